"""Continuous cyclic activation of period 2^b, the training surrogate of the b-bit wrap
(WrapNet, Ni et al., ICLR 2021; used by PC++ §4.2 for BWAA).

With M = 2^(b−1), band width w ∈ (0, M) and u = ((x + M) mod 2M) − M ∈ [−M, M) the wrapped
value, the (piecewise-linear) cyclic activation is

    cyclic(x) = u                                  if |u| <= M − w     (identity around 0)
              = sign(u) · (M − w) · (M − |u|) / w   if M − w < |u| <= M  (transition band)

In the band the output runs on a straight line from ±(M − w) down to 0 at the wrap point
u = ±M, so it is continuous, periodic (period 2^b) and bounded by M − w. The band has the
same slope −(M − w)/w on both sides of the wrap point, so the only kinks are at
|u| = M − w. Gradient: 1 in the identity region, −(M − w)/w in the band.
"""

from __future__ import annotations

import torch

from ._checks import half_range


def check_width(width, bits: int) -> float:
    """Return ``width`` as a float after checking 0 < width < 2^(b−1)."""
    m = half_range(bits)
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {width!r}")
    w = float(width)
    if not 0.0 < w < m:
        raise ValueError(f"cyclic transition width must lie in (0, 2^(b-1)) = (0, {m}) for bits={bits}, got {width}")
    return w


def cyclic(x: torch.Tensor, bits: int, width: float) -> torch.Tensor:
    """Piecewise-linear cyclic activation of period 2^b (formula in the module docstring).

    Differentiable almost everywhere: 1 on |u| < M − w, −(M − w)/w on M − w < |u| < M. The
    backward pass keeps only the boolean mask of the identity region (not the float
    intermediates autograd would save), since it runs on every BWAA layer's accumulation.
    Same dtype as ``x``.
    """
    m = float(half_range(bits))
    w = check_width(width, bits)
    if not x.is_floating_point():
        raise TypeError(f"cyclic needs a floating tensor, got {x.dtype}")
    return _Cyclic.apply(x, m, w)


class _Cyclic(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, m: float, w: float) -> torch.Tensor:
        # u = x − 2M·k with an integer k, so u == x bit for bit where k = 0 (around 0)
        u = x - (2.0 * m) * torch.floor((x + m) / (2.0 * m))
        a = u.abs()
        inside = a <= m - w
        band = torch.sign(u).mul_((m - w) / w).mul_(a.neg_().add_(m))
        ctx.save_for_backward(inside)
        ctx.slope = -(m - w) / w
        return torch.where(inside, u, band)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return torch.where(inside, grad, grad * ctx.slope), None, None
