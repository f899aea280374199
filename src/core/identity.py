"""A run's identity: what it trains, independent of who asks for it and where it is stored.

Two runs with the same identity are the same experiment (PC++ Table 7 repeats Table 2's E2E runs,
Table 8 repeats cells of Tables 3 and 4): a sweep trains it once and every table that prints it
reads that run. The identity is the first 12 hex digits of the SHA-256 of the canonical JSON (sorted
keys) of the resolved training config, after

- dropping what does not change training: labels (``cell``, ``run_id``, ``run_name``,
  ``experiment_name``), logging and progress display, where the run is stored and executed (paths,
  device, compilation, data path and loader workers, cluster profile), resume and stop settings (:data:`IDENTITY_FREE_KEYS`);
- dropping a key added later at its neutral value (:data:`NEUTRAL_DEFAULTS`: one batch per step is what
  every run did before ``trainer.accumulate_grad_batches`` existed);
- writing a checkpoint that lies in a sweep's run directory (``.../<name>_<id>/checkpoints/*.pt``)
  as ``run:<id>``, so an FT run (or a KD student) is identified by its parent's identity, not by a path.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# dotted keys (a key drops its whole subtree)
IDENTITY_FREE_KEYS = (
    "hydra", "cell", "run_id", "run_name", "experiment_name", "output_root", "resume", "wait_for_lock", "logger",
    "cluster",
    "trainer.progress", "trainer.log_every_n_steps", "trainer.log_every_n_seconds", "trainer.stop_after_epoch",
    "trainer.device", "trainer.compile",
    "trainer.checkpoint_every_n_steps",
    "trainer.eval_soft", "dataset.num_workers", "dataset.loader", "dataset.prefetch_factor", "dataset.eval_batch_size",
    "dataset.splits.root", "dataset.splits.download",
)
# keys added after runs existed, dropped at the value that trains exactly as before the key existed:
# existing identities (and resumable runs) stay valid
NEUTRAL_DEFAULTS = {"trainer.accumulate_grad_batches": 1, "model.protocol.kd_teacher": None}
CHECKPOINT_KEYS = ("pipeline.checkpoint", "model.protocol.kd_teacher")
ID_LENGTH = 12
_SWEEP_CHECKPOINT = re.compile(rf"_([0-9a-f]{{{ID_LENGTH}}})[/\\]checkpoints[/\\][^/\\]+$")


def identity_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that decides what a run trains (a new dict; ``config`` is
    left as it is)."""

    def keep(node: Any, prefix: str) -> Any:
        if not isinstance(node, dict):
            if prefix in CHECKPOINT_KEYS and isinstance(node, str):
                match = _SWEEP_CHECKPOINT.search(node)
                return f"run:{match.group(1)}" if match else node
            return node
        out = {}
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if path not in IDENTITY_FREE_KEYS and not is_neutral(path, value):
                out[str(key)] = keep(value, path)
        return out

    return keep(config, "")


def is_neutral(path: str, value: Any) -> bool:
    """Whether the dotted key ``path`` holds the value at which it changes nothing (NEUTRAL_DEFAULTS)."""
    return path in NEUTRAL_DEFAULTS and value == NEUTRAL_DEFAULTS[path] and not isinstance(value, bool)


def run_id(config: dict[str, Any]) -> str:
    """The identity of a resolved config (a plain dict, interpolations resolved)."""
    text = json.dumps(identity_config(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]

