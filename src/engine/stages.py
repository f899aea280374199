"""Two-stage training for PC++ §4.3 protocol (3): binarization-aware pre-training, then fine-tuning.

With ``model.protocol.pretrain=true`` (and a binarizing quantizer) one command runs

  stage 1  <run dir>/pretrain/   the binarized model trained ``model.protocol.pretrain_epochs``
                                 epochs (learning rate ``model.protocol.pretrain_lr``, null = the
                                 optimizer's), from the run's full-precision initial weights;
  stage 2  <run dir>/            fine-tuning for ``trainer.max_epochs`` epochs with a fresh
                                 optimizer and schedule, starting from stage 1's final weights
                                 (latent weights, extra LayerNorms, everything).

Each stage is an ordinary run with its own checkpoints, so an interrupted command resumes the stage
it was in; a completed stage 1 is not run again. The KD teacher of both stages is the
full-precision model, not stage 1's result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.core.errors import UserError
from src.engine.runner import Run

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
    stage = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    stage.trainer.max_epochs = epochs
    if protocol.get("pretrain_lr") is not None:
        stage.optimizer.lr = float(protocol.pretrain_lr)
    return stage


def _completed(run_dir: Path) -> bool:
    results = run_dir / "results.json"
    return results.exists() and json.loads(results.read_text()).get("status") == "completed"


def run_stages(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """The run, preceded by its pre-train stage when the protocol asks for one."""
    run_dir = Path(run_dir)
    if not wants_pretrain(cfg):
        return Run(cfg, run_dir).execute()
    stage_dir = run_dir / PRETRAIN_DIR
    stage_cfg = pretrain_config(cfg)
    if not _completed(stage_dir):
        pre = Run(stage_cfg, stage_dir).execute()
        if pre["status"] != "completed":  # interrupted / diverged / failed: report it; re-running resumes
            return pre
    return Run(cfg, run_dir, stage_init=stage_dir / "checkpoints" / "last.pt").execute()
