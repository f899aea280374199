"""Integer accumulation of ±1 activations × ±1 weights, emulated exactly in float32, and its
b-bit wrapped form (WrapNet, Ni et al., ICLR 2021; PC++ §4.2 BWAA).

A conv/linear output is Σ_k x_k w_k. With x_k, w_k ∈ {−1, +1} (0 for zero padding) every
partial sum is an integer of magnitude <= fan_in, exact in float32 while fan_in < 2^24
(:func:`assert_exact_fan_in`). Since modular addition is associative, a b-bit register that
wraps after every addition ends with wrap_b(Σ_k x_k w_k): the float32 conv/matmul followed by
:func:`wrap` is therefore an exact emulation. The accumulation always runs in float32 with
autocast disabled, whatever the input dtype or an enclosing bf16/fp16 autocast region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import assert_exact_fan_in, no_autocast
from .wrap import wrap

OPS = ("conv2d", "linear")


def accumulate_conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, dilation=1,
                      groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, w)`` without bias, in float32 with autocast off (differentiable; the
    unwrapped accumulation that training feeds to :class:`WrapAccumulator`)."""
    assert_exact_fan_in(w[0].numel())
    with no_autocast(x.device):
        return F.conv2d(x.float(), w.float(), None, stride, padding, dilation, groups)


def accumulate_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, w)`` without bias, in float32 with autocast off (differentiable)."""
    assert_exact_fan_in(w.shape[-1])
    with no_autocast(x.device):
        return F.linear(x.float(), w.float())


def wrapped_conv2d(x: torch.Tensor, w: torch.Tensor, bits: int, stride=1, padding=0, dilation=1,
                   groups: int = 1) -> torch.Tensor:
    """b-bit wrapped conv2d of ±1 inputs and weights: ``wrap(conv2d(x, w), bits)`` in float32.

    Zero padding contributes 0 products. Equals, element by element, a b-bit integer register
    that accumulates the products one by one with wrap-around."""
    return wrap(accumulate_conv2d(x, w, stride, padding, dilation, groups), bits)


def wrapped_linear(x: torch.Tensor, w: torch.Tensor, bits: int) -> torch.Tensor:
    """b-bit wrapped linear map of ±1 inputs and weights: ``wrap(x @ wᵀ, bits)`` in float32."""
    return wrap(accumulate_linear(x, w), bits)


def binary_accumulate(x_pm1: torch.Tensor, w_pm1: torch.Tensor, op: str, bits: int, **conv_kwargs) -> torch.Tensor:
    """Dispatch to :func:`wrapped_conv2d` (``op='conv2d'``, keyword args stride, padding,
    dilation, groups) or :func:`wrapped_linear` (``op='linear'``, no keyword args)."""
    if op == "conv2d":
        return wrapped_conv2d(x_pm1, w_pm1, bits, **conv_kwargs)
    if op == "linear":
        if conv_kwargs:
            raise TypeError(f"linear accumulation takes no extra arguments, got {sorted(conv_kwargs)}")
        return wrapped_linear(x_pm1, w_pm1, bits)
    raise ValueError(f"op must be one of {OPS}, got {op!r}")
