"""Dashboards. ``logger=none`` keeps results in the run directory only; ``logger=wandb`` also
streams them to Weights & Biases.

``logger.mode=auto`` leaves the mode to wandb's own settings (``WANDB_MODE``, including
``disabled``; ``wandb online/offline``; the credentials of ``wandb login``) and decides only where
wandb would otherwise stop a job to ask for a key: with no credentials at all the run is logged
offline (``wandb sync`` uploads it later). ``online``, ``offline`` and ``disabled`` force that mode."""

from __future__ import annotations

import logging
import netrc
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("proxbin")


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

        self._wandb = wandb
        self.run = wandb.init(
            project=project, entity=entity, group=group, job_type=job_type, tags=[str(t) for t in tags or []],
            name=name, id=run_id or uuid.uuid4().hex[:12], resume="allow", config=config, mode=wandb_mode(mode),
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


def wandb_mode(mode: str) -> str | None:
    """The mode passed to ``wandb.init``: None (wandb decides from its environment and settings)
    unless ``mode`` forces one, or ``auto`` finds neither a mode set for wandb nor any credentials."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_DISABLED") or has_credentials():
        return None
    log.info("wandb: no credentials (WANDB_API_KEY, `wandb login`) and no WANDB_MODE: logging offline into the "
             "run directory; upload with `wandb sync`")
    return "offline"


def has_credentials() -> bool:
    """Whether wandb finds credentials without asking: the environment (an API key or an identity
    token file) or the netrc entry ``wandb login`` writes for the server's host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    for path in ([os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]):
        path = os.path.expanduser(path)
        try:
            if os.path.isfile(path) and netrc.netrc(path).authenticators(host):
                return True
        except (netrc.NetrcParseError, OSError):
            continue
    return False


def build_logger(cfg: dict[str, Any], run_dir: Path, config: dict[str, Any], run_id: str | None, name: str) -> NullLogger:
    kind = cfg.get("name", "none")
    if kind == "none":
        return NullLogger()
    if kind == "wandb":
        options = {k: v for k, v in cfg.items() if k != "name"}
        return WandbLogger(run_dir=run_dir, config=config, run_id=run_id, name=name, **options)
    raise ValueError(f"logger {kind!r} is not one of none, wandb")
