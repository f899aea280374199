"""Proximal maps and projections of the binarization papers.

All functions act elementwise on tensors of any shape and are plain tensor functions (no state),
so they serve the quantizers, the update rules, the plots and the ConQ toy alike.
"""

from __future__ import annotations

import torch


def sign(w: torch.Tensor) -> torch.Tensor:
    """Projection P_Q onto Q = {±1} (PC++ §2). sign(0) = +1, so the result is always ±1
    (torch.sign(0) = 0 would leave a weight that is neither)."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


def prox_proxquant(w: torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
    """ProxQuant's binary prox of the W-shaped r(x) = min(|x − 1|, |x + 1|) = ‖x − sign(x)‖₁
    (Bai et al. 2019): soft-thresholding toward the nearer of ±1 by s,
    prox(w) = sign(w)·(1 + sign(|w| − 1)·max(||w| − 1| − s, 0)). ``strength`` may be a tensor
    (elementwise strengths, ProxGen: their sign is checked where they are made, since a check
    here would wait for the device at every step)."""
    if not isinstance(strength, torch.Tensor) and strength < 0:
        raise ValueError(f"prox_proxquant strength must be >= 0, got {strength}")
    excess = w.abs() - 1
    return sign(w) * (1 + torch.sign(excess) * (excess.abs() - strength).clamp_min(0))


def prox_conq(w: torch.Tensor, strength: float) -> torch.Tensor:
    """ConQ's closed-form prox (Migliorati et al. 2024, eq. after (4)) of the concave
    r(x) = max{1 − x², |x| − 1} with s = λτ ∈ [0, ½):
    w/(1 − 2s) if |w| < 1 − 2s;  sign(w) if 1 − 2s ≤ |w| ≤ 1 + s;  w − s·sign(w) if |w| > 1 + s."""
    if not 0.0 <= strength < 0.5:
        raise ValueError(
            f"prox_conq strength s = λτ must lie in [0, 1/2) (the prox problem is strongly convex only "
            f"there), got {strength}"
        )
    a = w.abs()
    inner = w / (1 - 2 * strength)
    outer = w - strength * sign(w)
    return torch.where(a < 1 - 2 * strength, inner, torch.where(a <= 1 + strength, sign(w), outer))


def prox_bnn(w: torch.Tensor, mu: float) -> torch.Tensor:
    """The proximal quantizer behind BNN (PC++ eq. 9): sign(w) on |w| ≤ 1 and
    w/μ + sign(w)(1 − 1/μ) on |w| > 1 (monotone, continuous at ±1)."""
    if mu <= 0:
        raise ValueError(f"prox_bnn needs mu > 0, got {mu}")
    return torch.where(w.abs() <= 1, sign(w), w / mu + sign(w) * (1 - 1 / mu))


def linear_quantizer(w: torch.Tensor, rho: float, varrho: float = 0.0) -> torch.Tensor:
    """The piecewise-linear proximal quantizer L_ρ^ϱ of PC (PC++ App. A, eq. 10), from its verbal
    definition (the printed slopes are a typo, see NOTES.md). With q1 = −1, q2 = +1, p2 = 0:
    q1⁺ = min(0, −1 + ρ), q2⁻ = max(0, 1 − ρ), p2⁻ = max(−1, −ϱ), p2⁺ = min(1, ϱ); the map is −1 on
    [−1, q1⁺], +1 on [q2⁻, 1], the straight line (q1⁺, −1)→(0, p2⁻) and (0, p2⁺)→(q2⁻, 1) between,
    jumping at 0 (value p2⁺ at 0 itself). ρ = ϱ = 0 gives the identity, ρ ≥ 1 or ϱ ≥ 1 gives sign on
    [−1, 1]. Outside [−1, 1] (our choice, NOTES.md): sign(w)·max(|w| − ρ, 1) — continuous at ±1,
    monotone, the identity at ρ = 0, and ±1 once ρ ≥ |w| − 1, so a growing ρ binarizes every weight
    (PC++ App. A: "ρ is linearly increased over time to fulfill binary weights in the end")."""
    if rho < 0 or varrho < 0:
        raise ValueError(f"linear_quantizer needs rho, varrho >= 0, got rho={rho}, varrho={varrho}")
    q1p, q2m = min(0.0, -1.0 + rho), max(0.0, 1.0 - rho)
    p2m, p2p = max(-1.0, -varrho), min(1.0, varrho)
    left = -1 + (w - q1p) * ((p2m + 1) / -q1p) if q1p < 0 else torch.full_like(w, p2m)
    right = p2p + w * ((1 - p2p) / q2m) if q2m > 0 else torch.full_like(w, p2p)
    out = torch.where(w < 0, torch.where(w <= q1p, -torch.ones_like(w), left),
                      torch.where(w >= q2m, torch.ones_like(w), right))
    outside = sign(w) * (w.abs() - rho).clamp_min(1)
    return torch.where(w.abs() > 1, outside, out)
