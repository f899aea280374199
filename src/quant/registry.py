"""The one registry of forward–backward pairs: a pair class joins it by its decorator,

    @register_pair("bnnpp")
    class BNNPlusPlus(ForwardBackwardQuantizer): ...

and :func:`build_quantizer` builds a registered pair by that name. Methods are not registered here:
a method is a config file of ``configs/quantizer/`` naming its pair by ``_target_`` (several methods
share a pair, e.g. every gradient-at-w method trains with ``identity``).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch.nn as nn

_PAIRS: dict[str, type[nn.Module]] = {}

Pair = TypeVar("Pair", bound=type)


def register_pair(name: str) -> Callable[[Pair], Pair]:
    """Class decorator: register a ForwardBackwardQuantizer subclass as the pair ``name``."""
    def add(cls: Pair) -> Pair:
        if name in _PAIRS and _PAIRS[name] is not cls:
            raise ValueError(f"pair name {name!r} is taken by {_PAIRS[name].__qualname__}; "
                             f"choose another name for {cls.__qualname__}")
        _PAIRS[name] = cls
        return cls
    return add


def registered_pairs() -> dict[str, type[nn.Module]]:
    """Name -> class of every registered pair (a copy: register with the decorator)."""
    return dict(_PAIRS)


def build_quantizer(name: str, **params) -> nn.Module:
    """The registered pair ``name`` with its parameters, e.g. ``build_quantizer("bnnpp", mu_end=60.0)``."""
    if name not in _PAIRS:
        raise ValueError(f"unknown quantizer pair {name!r}; registered pairs: {', '.join(sorted(_PAIRS))} "
                         f"(a method's pair is the `weight:` node of configs/quantizer/<method>.yaml)")
    return _PAIRS[name](**params)
