"""The two extension points the training engine offers to quantizers.

The engine knows nothing about any binarization method. Each step it calls
:func:`set_progress` with p = t/T (for the μ, ρ, t/k schedules of the papers), after
the optimizer step it calls the method's update rule (proximal updates, clipping), and
it evaluates inside :func:`evaluation_form` so that quantized layers can switch to
their truly binary form. With the ``fp`` quantizer all three do nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn

FORMS = ("binary", "soft")


def set_progress(model: nn.Module, progress: float) -> None:
    """Pass the training progress p = t/T ∈ [0, 1] to every module that has a schedule."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must lie in [0, 1], got {progress}")
    for module in model.modules():
        if module is not model and hasattr(module, "set_progress"):
            module.set_progress(progress)


@contextmanager
def evaluation_form(model: nn.Module, form: str = "binary") -> Iterator[nn.Module]:
    """Evaluate ``model`` with its quantized layers in ``form``: 'binary' (±1 weights, and
    ±1 activations under BWA: the headline metric) or 'soft' (the training-time forward
    F, a diagnostic). Modules opt in by having an ``evaluation_form`` attribute."""
    if form not in FORMS:
        raise ValueError(f"evaluation form {form!r} is not one of {FORMS}")
    layers = [m for m in model.modules() if hasattr(m, "evaluation_form")]
    previous = [m.evaluation_form for m in layers]
    for m in layers:
        m.evaluation_form = form
    try:
        yield model
    finally:
        for m, f in zip(layers, previous):
            m.evaluation_form = f


def auxiliary_loss(model: nn.Module):
    """Sum of the extra loss terms that modules add to the objective (e.g. the BWAA overflow
    penalty); modules opt in with an ``auxiliary_loss()`` method returning a tensor or None.
    Returns None when no module contributes."""
    terms = [m.auxiliary_loss() for m in model.modules() if m is not model and hasattr(m, "auxiliary_loss")]
    terms = [t for t in terms if t is not None]
    return sum(terms) if terms else None


def accumulator_metrics(model: nn.Module, prefix: str = "") -> dict[str, float]:
    """Per-layer overflow rate and penalty of the BWAA accumulators since the last call (keys
    ``<prefix>overflow_rate/<layer>``, ``<prefix>overflow_penalty/<layer>``); resets their statistics."""
    out: dict[str, float] = {}
    for name, module in model.named_modules():
        if hasattr(module, "stats") and hasattr(module, "reset_stats"):
            layer = name.rsplit(".accumulator", 1)[0]
            stats = module.stats()
            out[f"{prefix}overflow_rate/{layer}"] = float(stats["overflow_rate"])
            out[f"{prefix}overflow_penalty/{layer}"] = float(stats["penalty"])
            module.reset_stats()
    return out
