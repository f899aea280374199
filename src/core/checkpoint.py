"""Checkpoints that make a run resumable bit for bit: weights, optimizer, scheduler, epoch,
history, the RNG states of every generator in play, and the wandb run id; and the loader that puts
another run's weights into a model by matching names and shapes (fine-tuning, pre-train stages)."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from src.core.errors import UserError
from src.core.io import atomic_write


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """torch.save into memory, then an atomic write: an interrupted save leaves the old file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint for resuming or fine-tuning; a clear UserError if it cannot be read.

    Only opened for reading: an unreadable file is left exactly as it is."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' does not exist (or is not a file)")
    try:
        # weights_only=False: our own checkpoints hold RNG states (numpy arrays, tuples).
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(
            f"checkpoint '{path}' could not be read ({type(exc).__name__}: {exc}). The file was left untouched; "
            f"point pipeline.checkpoint at a valid file, or move the damaged one away to start afresh."
        ) from None


def model_state_from(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights in a proxbin checkpoint, or the checkpoint itself if it is a plain state_dict."""
    for key in ("model", "state_dict", "model_state_dict"):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    # DDP ("module.") prefixes are dropped so single- and multi-GPU checkpoints are interchangeable.
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def load_matching(model: nn.Module, state: dict[str, Any], strict: bool) -> dict[str, list[str]]:
    """Load every tensor whose name and shape match; with ``strict`` any mismatch is an error.
    Returns the skipped (shape differs / unexpected) and missing names, for results.json."""
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    report = {
        "loaded": len(matched),
        "shape_mismatch": sorted(k for k in state if k in own and own[k].shape != state[k].shape),
        "unexpected": sorted(k for k in state if k not in own),
        "missing": sorted(k for k in own if k not in matched),
    }
    if not matched or (strict and (report["shape_mismatch"] or report["unexpected"] or report["missing"])):
        raise UserError(
            f"the fine-tuning weights do not fit this model: {len(matched)} tensors match, "
            f"shape mismatches {report['shape_mismatch'][:5]}, unexpected {report['unexpected'][:5]}, "
            f"missing {report['missing'][:5]}. Check that pipeline.checkpoint was trained with the same model "
            f"config (or set pipeline.strict=false to skip a differing classifier head)."
        )
    model.load_state_dict(matched, strict=False)
    return report
