"""Model surgery: replace the eligible Conv2d/Linear layers of a network by quantized ones.

By default the first and the last eligible layer stay in full precision (the usual BNN
practice, and PC++'s); ``keep_fp`` also accepts module names ("layers.0.conv1", "fc") and shell-style
patterns over the eligible layers' names ("*shortcut*": every 1x1 shortcut conv, as ProxQuant's code
keeps them).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Callable, Iterable

import torch.nn as nn

ELIGIBLE = (nn.Conv2d, nn.Linear)
POSITIONS = ("first", "last")

LayerFactory = Callable[[str, nn.Module], "nn.Module | None"]


def eligible_layers(model: nn.Module) -> list[str]:
    """Names of the plain Conv2d/Linear modules, in registration order (≈ forward order)."""
    return [name for name, m in model.named_modules() if type(m) in ELIGIBLE]


def resolve_keep_fp(model: nn.Module, keep_fp: Iterable[str]) -> set[str]:
    names = eligible_layers(model)
    all_modules = dict(model.named_modules())
    kept: set[str] = set()
    for entry in keep_fp:
        if entry == "first" and names:
            kept.add(names[0])
        elif entry == "last" and names:
            kept.add(names[-1])
        elif entry in all_modules:
            kept.add(entry)
        elif any(c in entry for c in "*?[") and any(fnmatchcase(n, entry) for n in names):
            kept.update(n for n in names if fnmatchcase(n, entry))
        else:
            raise ValueError(
                f"task.keep_fp entry {entry!r} is neither one of {POSITIONS}, nor a module of the model, nor a "
                f"pattern (*, ?, [..]) matching an eligible layer; eligible layers are: {', '.join(names)}"
            )
    return kept


def quantize_model(model: nn.Module, make_layer: LayerFactory | None, keep_fp: Iterable[str] = POSITIONS,
                   only: Iterable[str] | None = None) -> list[str]:
    """Replace every eligible layer not kept in full precision by ``make_layer(name, layer)``.

    ``make_layer`` returns the replacement, or None to leave that layer alone; a None factory
    (the ``fp`` quantizer) leaves the model untouched. ``only`` (names) restricts the candidates,
    e.g. to the Linear layers of chosen transformer blocks; every other layer stays in full
    precision. Returns the names that were replaced."""
    if make_layer is None:
        return []
    kept = resolve_keep_fp(model, keep_fp)
    allowed = None if only is None else set(only)
    replaced = []
    for name in eligible_layers(model):
        if name in kept or (allowed is not None and name not in allowed):
            continue
        new = make_layer(name, model.get_submodule(name))
        if new is not None:
            model.set_submodule(name, new)
            replaced.append(name)
    return replaced
