"""proxbin's one entry point: ``python src/train.py [group=option ...] [key=value ...]``.

Exit codes: 0 completed (or stopped by trainer.stop_after_epoch, to be resumed), 1 failed
(results.json holds the message; also Hydra's own config errors), 2 bad input or a run directory
that cannot be used (a one-paragraph message; nothing written, existing files untouched), 3
diverged (loss NaN/inf; results.json holds the step), 128 + N stopped by signal N (SIGTERM: 143,
SIGINT: 130; results.json says interrupted, re-running resumes).
In a multirun, failed, diverged and refused jobs are recorded and the sweep goes on; at its end one
line per job is printed, and the exit code is 1 when any job did not complete.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.core.errors import UserError
from src.core.io import write_text_if_changed
from src.engine import multirun
from src.engine.distributed import adopt_slurm_tasks
from src.engine.runner import EXIT_CODES, Stopped
from src.engine.signals import StopSignals
from src.engine.stages import run_stages
from src.sweeps.spec_files import train_refusal

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
HYDRA_SUBDIR = ".hydra"  # written here once the run is accepted (configs/train.yaml: hydra.output_subdir=null)
log = logging.getLogger("proxbin")


def run(cfg: DictConfig, run_dir: Path, on_accept: Callable[[], None] | None = None,
        stop: StopSignals | None = None) -> dict:
    # a plain Run unless model.protocol.pretrain asks for two stages
    return run_stages(cfg, run_dir, on_accept=on_accept, stop=stop)


def hydra_files(cfg: DictConfig, run_dir: Path) -> Callable[[], None]:
    """Hydra's record of the command (config.yaml, hydra.yaml, overrides.yaml in .hydra/), as Hydra
    writes it, but only once the run is accepted: a refused command must not rewrite the record of
    the run it was refused for."""
    hydra_cfg = HydraConfig.instance().cfg
    texts = {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
             "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task)}

    def write() -> None:
        if int(os.environ.get("RANK", "0")) == 0:
            for name, text in texts.items():
                write_text_if_changed(run_dir / HYDRA_SUBDIR / name, text)

    return write


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    multi = hydra_cfg.mode == RunMode.MULTIRUN
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if adopt_slurm_tasks() and int(os.environ["RANK"]) > 0:
        _detach_log(run_dir)  # SLURM tasks of one DDP run (submitit's tasks_per_node): rank 0 alone logs to train.log
    stop = StopSignals()
    try:
        with stop:
            results = run(cfg, run_dir, hydra_files(cfg, run_dir), stop)
    except Stopped as exc:
        _forget(run_dir)
        print(f"proxbin: {signal.Signals(exc.signum).name}: stopped before anything was written", file=sys.stderr)
        sys.exit(128 + exc.signum)  # in a multirun too: the whole sweep stops
    except UserError as exc:
        _forget(run_dir)
        print(f"proxbin: error: {exc}", file=sys.stderr)
        if multi:
            multirun.job_outcome("refused", run_dir, str(exc))
            return None
        sys.exit(EXIT_CODES["user_error"])
    except Exception as exc:  # raised before the run wrote anything (after, the run records it itself)
        _forget(run_dir)
        traceback.print_exc()
        if multi:
            multirun.job_outcome("failed", run_dir, f"{type(exc).__name__}: {exc}")
            return None
        sys.exit(EXIT_CODES["failed"])
    status = results["status"]
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"proxbin: {status}: {cfg.run_name}  test acc {_fmt(results.get('final_test_acc'))}  "
              f"best {_fmt(results.get('best_test_acc'))}  -> {run_dir}")
    if multi:
        multirun.job_outcome(status, run_dir, results.get("message"), results.get("final_test_acc"))
        _detach_log(run_dir)
    if results.get("signal"):
        sys.exit(128 + int(results["signal"]))  # in a multirun too: the whole sweep stops
    if EXIT_CODES[status] and not multi:
        sys.exit(EXIT_CODES[status])
    return results.get("final_test_acc")


def _fmt(acc: float | None) -> str:
    return "—" if acc is None else f"{acc:.2f}%"


def _forget(run_dir: Path) -> None:
    """After a refusal: the run directory Hydra created for this command goes again if it is
    empty, and nothing more is logged into it."""
    _detach_log(run_dir)
    try:
        run_dir.rmdir()
    except OSError:
        pass


def _detach_log(run_dir: Path) -> None:
    """Close Hydra's log file in ``run_dir`` (train.log): in a multirun Hydra would go on logging the
    next job's launch into it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir:
            root.removeHandler(handler)
            handler.close()


def _refuse_sweep_specs(arguments: list[str]) -> None:
    """configs/sweep/ holds scripts/reproduce.py's specs: checked before Hydra composes anything,
    since Hydra would compose ``+sweep=...`` silently (and train the default run) and fail to
    find ``experiment=<paper>/<table>`` with a message that does not name reproduce.py."""
    message = train_refusal(arguments)
    if message:
        print(f"proxbin: error: {message}", file=sys.stderr)
        sys.exit(EXIT_CODES["user_error"])


def resolvable_hydra_cfg(arguments: list[str]) -> list[str]:
    """``--cfg hydra --resolve``: Hydra prints its own node after dropping every other one, so its
    interpolations of the run's keys (``${output_root}``, ``${run_name}``, ``${cluster.*}``) cannot
    resolve. The same node selected from the whole config (``--cfg all --package hydra``) can."""
    flags = {"--cfg", "-c"}
    asks_hydra = any((a in flags and b == "hydra") for a, b in zip(arguments, arguments[1:])) or "--cfg=hydra" in arguments
    resolves = "--resolve" in arguments or "-r" in arguments
    packaged = any(a in ("--package", "-p") or a.startswith("--package=") for a in arguments)
    if not (asks_hydra and resolves) or packaged:
        return arguments
    out = ["--cfg=all" if a == "--cfg=hydra" else a for a in arguments]
    for i in range(len(out) - 1):
        if out[i] in flags and out[i + 1] == "hydra":
            out[i + 1] = "all"
    return [*out, "--package", "hydra"]


def _quiet_non_main_ranks() -> None:
    """Under torchrun (or several srun tasks) only rank 0 writes files and logs: the other ranks get Hydra overrides
    that switch off its log files and its saved copy of the config."""
    if int(os.environ.get("RANK", "0")) > 0:
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


if __name__ == "__main__":
    _refuse_sweep_specs(sys.argv[1:])
    sys.argv[1:] = resolvable_hydra_cfg(sys.argv[1:])
    adopt_slurm_tasks()  # `srun --ntasks=N python src/train.py`: one DDP run, as under torchrun
    _quiet_non_main_ranks()
    main()
    if multirun.incomplete_jobs():
        sys.exit(1)
