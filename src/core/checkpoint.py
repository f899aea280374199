"""Checkpoints that make a run resumable bit for bit: weights, optimizer, scheduler, epoch,
history, the RNG states of every generator in play, and the wandb run id; and the loader that puts
another run's weights into a model by matching names and shapes (fine-tuning, pre-train stages).

Every checkpoint proxbin writes carries ``checksum``, a SHA-256 of everything else it holds (each
tensor's dtype, shape and bytes; every other value's type and repr), so a file damaged on disk is
recognised and refused instead of resumed from. The file stays a plain ``torch.save`` dictionary:
``torch.load(path)["model"]`` keeps working for anyone who reads it without proxbin.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn

from src.core.errors import UserError
from src.core.io import atomic_write

CHECKSUM_KEY = "checksum"


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


def payload_checksum(state: dict[str, Any]) -> str:
    """SHA-256 over every value of ``state`` except its checksum, walked in order; the same
    for the dictionary that was saved and the one ``torch.load`` returns."""
    digest = hashlib.sha256()

    def walk(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, np.ndarray):
            digest.update(f"ndarray{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, dict):
            digest.update(f"dict{len(value)}".encode())
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__}{len(value)}".encode())
            for item in value:
                walk(item)
        elif value is None or isinstance(value, (bool, int, float, str, bytes, np.generic, torch.dtype, torch.device)):
            digest.update(f"{type(value).__name__}:{value!r};".encode())
        else:  # anything else by its pickle, never by a repr that may hold a memory address
            digest.update(type(value).__qualname__.encode() + pickle.dumps(value, protocol=4))

    walk({k: v for k, v in state.items() if k != CHECKSUM_KEY})
    return "sha256:" + digest.hexdigest()


def with_checksum(state: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in state.items() if k != CHECKSUM_KEY}, CHECKSUM_KEY: payload_checksum(state)}


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> str:
    """torch.save (with the checksum added) into memory, then an atomic write: an interrupted save
    leaves the old file. Returns the checksum."""
    full = with_checksum(state)
    buffer = io.BytesIO()
    torch.save(full, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))
    return full[CHECKSUM_KEY]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint for resuming or fine-tuning; a clear UserError if it cannot be read or
    its checksum does not match its content. Files without a checksum (plain state_dicts, other
    tools' checkpoints) are read as they are.

    Only opened for reading: an unreadable file is left exactly as it is."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' does not exist (or is not a file)")
    try:
        # weights_only=False: our own checkpoints hold RNG states (numpy arrays, tuples).
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(
            f"checkpoint '{path}' could not be read ({type(exc).__name__}: {exc}). The file was left untouched; "
            f"point pipeline.checkpoint at a valid file, or move the damaged one away to start afresh."
        ) from None
    if isinstance(state, dict) and CHECKSUM_KEY in state:
        expected, actual = state[CHECKSUM_KEY], payload_checksum(state)
        if expected != actual:
            raise UserError(
                f"checkpoint '{path}' is damaged: its content does not match the checksum it was written with "
                f"({actual} instead of {expected}). It was not used and was left untouched; restore it from a "
                f"copy, or move it away to start the run afresh."
            )
    return state


def model_state_from(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights in a proxbin checkpoint, or the checkpoint itself if it is a plain state_dict."""
    for key in ("model", "state_dict", "model_state_dict"):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    # DDP ("module.") prefixes are dropped so single- and multi-GPU checkpoints are interchangeable.
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def load_matching(model: nn.Module, state: dict[str, Any], may_differ: Iterable[str] | None = ()) -> dict[str, Any]:
    """Load the tensors of ``state`` into ``model`` by name and shape.

    Every tensor of the model must be loaded and every tensor of ``state`` used, except under the
    module names ``may_differ`` (e.g. a new classifier head; None: anywhere, a deliberately partial
    load). Anything else missing, of another shape or not in the model stops with a UserError
    listing those tensors. Returns what was loaded, skipped and left at its initialisation, for
    results.json."""
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    report = {
        "loaded": len(matched),
        "shape_mismatch": sorted(k for k in state if k in own and own[k].shape != state[k].shape),
        "unexpected": sorted(k for k in state if k not in own),
        "missing": sorted(k for k in own if k not in matched),
    }

    def excused(name: str) -> bool:
        return may_differ is None or any(name == m or name.startswith(m + ".") for m in may_differ)

    missing = [k for k in report["missing"] if not excused(k)]
    unexpected = [k for k in report["unexpected"] if not excused(k)]
    if not matched or missing or unexpected:
        differ = "" if may_differ is None else \
            f" (only {', '.join(may_differ)} may differ)" if may_differ else " (nothing may differ)"
        raise UserError(
            f"the initial weights do not fit this model: {len(matched)} of {len(own)} tensors match{differ}; "
            f"missing or of another shape: {_listed(missing)}; not in the model: {_listed(unexpected)}. "
            f"Check that the weights were trained with the same model config, or set pipeline.partial=true to "
            f"load what matches and train the rest from its initialisation."
        )
    model.load_state_dict(matched, strict=False)
    return report


def _listed(names: list[str], shown: int = 8) -> str:
    if not names:
        return "none"
    return f"{len(names)} ({', '.join(names[:shown])}{', ...' if len(names) > shown else ''})"
