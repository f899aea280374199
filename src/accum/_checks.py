"""Argument checks shared by the accumulator modules (WrapNet, Ni et al., ICLR 2021)."""

from __future__ import annotations

import contextlib
import operator

import torch

#: float32 has a 24-bit significand: every integer with |n| <= 2^24 is exact, so a sum of
#: ±1 products is exact as long as the fan-in (the number of terms) stays below 2^24.
FLOAT32_EXACT_LIMIT = 2 ** 24

#: Largest accumulator width: the wrap is computed in int64, so 2^bits must fit there.
MAX_BITS = 62


def check_bits(bits) -> int:
    """Return ``bits`` as an int after checking it is an integer in [2, 62]."""
    if isinstance(bits, bool):
        raise TypeError(f"bits must be an integer >= 2, got the bool {bits!r}")
    try:
        b = operator.index(bits)
    except TypeError:
        raise TypeError(f"bits must be an integer >= 2, got {bits!r} of type {type(bits).__name__}") from None
    if not 2 <= b <= MAX_BITS:
        raise ValueError(f"bits must lie in [2, {MAX_BITS}] (a b-bit two's-complement register), got {b}")
    return b


def half_range(bits) -> int:
    """M = 2^(b−1): the b-bit two's-complement range is [−M, M − 1]."""
    return 2 ** (check_bits(bits) - 1)


def assert_exact_fan_in(fan_in) -> int:
    """Raise unless a sum of ``fan_in`` terms of ±1 (or 0) is exact in float32.

    Such a sum is an integer of magnitude <= fan_in, and float32 represents every integer
    up to 2^24 exactly, so the float32 conv/matmul followed by :func:`wrap` is an exact
    emulation of a b-bit integer accumulator iff fan_in < 2^24. Returns ``fan_in``.
    """
    if isinstance(fan_in, bool):
        raise TypeError(f"fan_in must be a positive integer, got {fan_in!r}")
    n = operator.index(fan_in)
    if n < 1:
        raise ValueError(f"fan_in must be a positive integer, got {n}")
    if n >= FLOAT32_EXACT_LIMIT:
        raise ValueError(f"fan_in {n} >= 2^24: float32 can no longer hold every partial sum of ±1 "
                         "products exactly, so the accumulation cannot be emulated exactly")
    return n


def no_autocast(device: torch.device | str):
    """A context disabling autocast on ``device`` (nothing for a device type that has no autocast),
    so that the accumulation runs in float32 even inside a bf16/fp16 region. The plain
    ``torch.autocast(enabled=False)`` itself: torch.compile traces it, not an object holding it."""
    kind = torch.device(device).type
    return torch.autocast(device_type=kind, enabled=False) if torch.amp.is_autocast_available(kind) \
        else contextlib.nullcontext()
