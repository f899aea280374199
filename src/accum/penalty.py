"""Overflow statistics and regularizer of a b-bit accumulator (WrapNet, Ni et al., ICLR 2021;
PC++ §4.2 BWAA). M = 2^(b−1); the representable range is [−M, M − 1].

* overflow_rate(x, b) = share of entries with round(x) ∉ [−M, M − 1].
* overflow_penalty(x, b, p) = reduce( (max(|x| − M, 0) / M)^p ).

*Choice* (WrapNet fixes neither): the excess over M is divided by M so that the penalty is
O(1) whatever b is (an accumulation that overshoots by half the range costs 0.5^p), and the
default power is p = 2: a squared hinge, differentiable everywhere with a gradient that
vanishes at the boundary and grows with the excess. The penalty is zero on [−M, M], so the
single non-representable value x = M is counted by overflow_rate but not penalized.
"""

from __future__ import annotations

import torch

from ._checks import half_range

REDUCTIONS = ("mean", "sum", "none")


def overflow_rate(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Share (0-dim float tensor in [0, 1], no host sync) of the entries of ``x`` whose
    nearest integer lies outside the b-bit range [−2^(b−1), 2^(b−1) − 1]. Not differentiable.
    NaN for an empty tensor."""
    m = half_range(bits)
    r = torch.round(x.detach()) if x.is_floating_point() else x.detach()
    outside = (r < -m) | (r > m - 1)
    return outside.float().mean()


def overflow_penalty(x: torch.Tensor, bits: int, power: float = 2, reduction: str = "mean") -> torch.Tensor:
    """Differentiable overflow regularizer ``reduce((max(|x| − M, 0) / M)^power)``, M = 2^(b−1).

    ``power`` must be >= 1 (2 by default, see the module docstring); ``reduction`` is 'mean',
    'sum' or 'none'. Zero, with zero gradient, inside [−M, M]. Computed in float32 or wider.
    """
    m = float(half_range(bits))
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not power >= 1:
        raise ValueError(f"penalty power must be a number >= 1, got {power!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    excess = torch.clamp_min(x.abs() - m, 0.0) / m
    value = excess ** power if power != 1 else excess
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value
