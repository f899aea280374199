"""Dashboards. ``logger=none`` keeps results in the run directory only; ``logger=wandb`` also
streams them to Weights & Biases (offline unless an API key is configured)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any


class NullLogger:
    run_id: str | None = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbLogger(NullLogger):
    """One wandb run per proxbin run; the id lives in the checkpoint so a resumed run continues it."""

    def __init__(self, project: str, run_dir: Path, config: dict[str, Any], run_id: str | None = None,
                 entity: str | None = None, group: str | None = None, job_type: str | None = None,
                 tags: list[str] | None = None, mode: str = "auto", name: str | None = None):
        import wandb

        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        self._wandb = wandb
        self.run = wandb.init(
            project=project, entity=entity, group=group, job_type=job_type, tags=[str(t) for t in tags or []],
            name=name, id=run_id or uuid.uuid4().hex[:12], resume="allow", config=config, mode=mode,
            dir=str(run_dir), reinit="finish_previous",
        )
        self.run_id = self.run.id

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self.run.log(metrics, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


def build_logger(cfg: dict[str, Any], run_dir: Path, config: dict[str, Any], run_id: str | None, name: str) -> NullLogger:
    kind = cfg.get("name", "none")
    if kind == "none":
        return NullLogger()
    if kind == "wandb":
        options = {k: v for k, v in cfg.items() if k != "name"}
        return WandbLogger(run_dir=run_dir, config=config, run_id=run_id, name=name, **options)
    raise ValueError(f"logger {kind!r} is not one of none, wandb")
