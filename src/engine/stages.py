"""Two-stage training for PC++ §4.3 protocol (3): binarization-aware pre-training, then fine-tuning.

With ``model.protocol.pretrain=true`` (and a binarizing quantizer) one command runs

  stage 1  <run dir>/pretrain/   the binarized model trained ``model.protocol.pretrain_epochs``
                                 epochs (learning rate ``model.protocol.pretrain_lr``, null = the
                                 optimizer's), from the run's full-precision initial weights;
  stage 2  <run dir>/            fine-tuning for ``trainer.max_epochs`` epochs with a fresh
                                 optimizer and schedule, starting from stage 1's final weights
                                 (latent weights, extra LayerNorms, everything).

Each stage is an ordinary run with its own checkpoints and lock, so an interrupted command resumes
the stage it was in; a completed stage 1 is not run again. Stage 2's refusals (a different run in
the directory, a damaged last.pt) are checked before stage 1 starts. The KD teacher of both stages is the
full-precision model, not stage 1's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from src.core.errors import UserError
from src.engine.runner import Run
from src.engine.signals import StopSignals

PRETRAIN_DIR = "pretrain"


def wants_pretrain(cfg: DictConfig) -> bool:
    protocol = cfg.model.get("protocol")
    return bool(protocol is not None and protocol.get("pretrain") and cfg.quantizer.get("weight") is not None)


def pretrain_config(cfg: DictConfig) -> DictConfig:
    protocol = cfg.model.protocol
    epochs = int(protocol.pretrain_epochs)
    if epochs < 1:
        raise UserError(f"model.protocol.pretrain_epochs={epochs}: the pre-train stage needs at least 1 epoch "
                        f"(or set model.protocol.pretrain=false)")
    # unresolved: what follows trainer.max_epochs (the cosine schedule's T_max) follows the stage's
    stage = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    stage.trainer.max_epochs = epochs
    if protocol.get("pretrain_lr") is not None:
        stage.optimizer.lr = float(protocol.pretrain_lr)
    return stage


def run_stages(cfg: DictConfig, run_dir: Path, on_accept: Callable[[], None] | None = None,
               stop: StopSignals | None = None) -> dict[str, Any]:
    """The run, preceded by its pre-train stage when the protocol asks for one. ``on_accept`` and
    ``stop`` as for :class:`Run` (each stage calls ``on_accept`` as it is accepted)."""
    run_dir = Path(run_dir)
    stop = stop or StopSignals()
    if not wants_pretrain(cfg):
        return Run(cfg, run_dir, on_accept=on_accept, stop=stop).execute()
    final = Run(cfg, run_dir, stage_init=run_dir / PRETRAIN_DIR / "checkpoints" / "last.pt", on_accept=on_accept,
                stop=stop)
    final.check()  # what would refuse stage 2 refuses before stage 1 trains
    with stop:  # no gap between the stages in which a signal would act as it does by default
        pre = Run(pretrain_config(cfg), run_dir / PRETRAIN_DIR, on_accept=on_accept, stop=stop).execute()
        if pre["status"] != "completed":  # interrupted / diverged / failed: report it; re-running resumes
            return pre
        return final.execute()
