"""Exact b-bit two's-complement wrap-around (WrapNet, Ni et al., ICLR 2021; PC++ §4.2 BWAA).

A b-bit register holding integers in [−M, M − 1], M = 2^(b−1), computes every addition modulo
2^b. Modular addition is associative, so wrapping each partial sum equals wrapping the final
integer sum once:

    wrap_b(x) = ((x + 2^(b−1)) mod 2^b) − 2^(b−1)      (mod with a non-negative result)
"""

from __future__ import annotations

import torch

from ._checks import check_bits, half_range


def wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap-around of an integer-valued tensor to ``bits`` bits.

    ``wrap(x, b) = ((x + 2^(b−1)) mod 2^b) − 2^(b−1)``, computed in int64 (bit mask
    ``& (2^b − 1)``), so it is exact for every signed integer dtype and for floating inputs
    holding integers exactly representable in their dtype (|x| <= 2^24 in float32). Floating
    inputs are first rounded to the nearest integer, which also absorbs the tiny rounding
    errors of non-direct conv algorithms (Winograd/FFT) on ±1 data. The result has the
    dtype of ``x``; for float32 it is exact whenever 2^(b−1) <= 2^24 or |x| <= 2^24.

    Gradient: for a floating ``x`` that requires grad the wrap is passed straight through
    (d wrap / dx := 1); use :func:`~src.accum.cyclic.cyclic` to train.
    """
    b = check_bits(bits)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"wrap expects a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex() or (not x.is_floating_point() and not x.dtype.is_signed):
        raise TypeError(f"wrap needs a signed integer or real floating tensor, got {x.dtype}")
    m = half_range(b)
    ints = torch.round(x.detach()).to(torch.int64) if x.is_floating_point() else x.to(torch.int64)
    wrapped = (((ints + m) & (2 * m - 1)) - m).to(x.dtype)
    if x.is_floating_point() and x.requires_grad:
        wrapped = wrapped + (x - x.detach())  # exactly +0 in the forward, identity gradient
    return wrapped
