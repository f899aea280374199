"""proxbin's one entry point: ``python src/train.py [group=option ...] [key=value ...]``.

Exit codes: 0 completed (or stopped by trainer.stop_after_epoch, to be resumed), 1 failed
(results.json holds the message; also Hydra's own config errors), 2 bad input (a one-paragraph
message, nothing written), 3 diverged (loss NaN/inf; results.json holds the step).
In a multirun, failed and diverged jobs are recorded and the sweep goes on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.core.errors import UserError
from src.engine.runner import EXIT_CODES
from src.engine.stages import run_stages
from src.sweeps.spec_files import train_refusal

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
log = logging.getLogger("proxbin")


def run(cfg: DictConfig, run_dir: Path) -> dict:
    return run_stages(cfg, run_dir)  # a plain Run unless model.protocol.pretrain asks for two stages


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        results = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except UserError as exc:
        print(f"proxbin: error: {exc}", file=sys.stderr)
        if multirun:
            return None
        sys.exit(EXIT_CODES["user_error"])
    status = results["status"]
    if int(os.environ.get("RANK", "0")) == 0:
            print(f"proxbin: {status}: {cfg.run_name}  test acc {_fmt(results.get('final_test_acc'))}  "
              f"best {_fmt(results.get('best_test_acc'))}  -> {hydra_cfg.runtime.output_dir}")
    if EXIT_CODES[status] and not multirun:
        sys.exit(EXIT_CODES[status])
    return results.get("final_test_acc")


def _fmt(acc: float | None) -> str:
    return "—" if acc is None else f"{acc:.2f}%"


def _refuse_sweep_specs(arguments: list[str]) -> None:
    """configs/sweep/ holds scripts/reproduce.py's specs: checked before Hydra composes anything,
    since Hydra would compose ``+sweep=...`` silently (and train the default run) and fail to
    find ``experiment=<paper>/<table>`` with a message that does not name reproduce.py."""
    message = train_refusal(arguments)
    if message:
        print(f"proxbin: error: {message}", file=sys.stderr)
        sys.exit(EXIT_CODES["user_error"])


def _quiet_non_main_ranks() -> None:
    """Under torchrun only rank 0 writes files and logs: the other ranks get Hydra overrides
    that switch off its log files and its saved copy of the config."""
    if int(os.environ.get("RANK", "0")) > 0:
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


if __name__ == "__main__":
    _refuse_sweep_specs(sys.argv[1:])
    _quiet_non_main_ranks()
    main()
