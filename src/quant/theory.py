"""Is a forward–backward pair in PC++? A numerical check of Corollary 1 (PC++ §3.1, App. C).

(F, B) admits F = T∘P, B = T'∘P iff both F and B are functions of P(w) = ∫_{−∞}^{w} dF/B and P is
proximal (monotone). On a grid we accumulate dP = dF/B interval by interval:
- B ≠ 0: dP = ΔF / B(midpoint) (a jump of F, e.g. sign at 0, gives a jump of P of ΔF/B(0));
- ΔF = 0 and B = 0 somewhere on the interval (an end or the midpoint): P may be filled in freely as
  long as it stays monotone (Example 1 does so for BNN on |w| > 1, with slope 1/μ); we let it
  increase with slope 1, so the fill never merges distinct B values (also where the support of B
  ends between two grid points);
- B(midpoint) = 0 but ΔF ≠ 0 and B ≠ 0 at an end of the interval: the support of B ends inside
  the interval (a kink, e.g. Poly+ at |c·w| = 1 between grid points): dP = ΔF / B(that end);
- B = 0 on the whole interval but ΔF ≠ 0: no P exists — not in PC++.
Then P must be nondecreasing, and wherever P takes one value F and B must each take one value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

TensorFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Verdict:
    in_pc_plus_plus: bool
    monotone: bool
    f_function_of_p: bool
    b_function_of_p: bool
    reasons: list[str] = field(default_factory=list)
    w: torch.Tensor | None = None
    P: torch.Tensor | None = None


def _varies_within_levels(P: torch.Tensor, values: torch.Tensor, p_tol: float, v_tol: float) -> float:
    """Largest spread of ``values`` over a run of grid points where P stays (numerically) constant."""
    new_level = torch.cat([torch.tensor([True]), torch.diff(P) > p_tol])
    level = torch.cumsum(new_level.long(), 0) - 1
    n = int(level[-1]) + 1
    hi = torch.full((n,), -torch.inf, dtype=values.dtype).scatter_reduce(0, level, values, "amax")
    lo = torch.full((n,), torch.inf, dtype=values.dtype).scatter_reduce(0, level, values, "amin")
    return float((hi - lo).max())


def check_pair(forward: TensorFn, backward: TensorFn, lo: float = -3.0, hi: float = 3.0, n: int = 120_001,
               b_tol: float = 1e-9, f_tol: float = 1e-9, tol: float = 1e-6) -> Verdict:
    """Verdict of Corollary 1 for (F, B) on a grid of ``n`` points over [lo, hi] (float64)."""
    w = torch.linspace(lo, hi, n, dtype=torch.float64)
    F, B = forward(w).double(), backward(w).double()
    dF = torch.diff(F)
    B_mid = backward((w[1:] + w[:-1]) / 2).double()
    dw = torch.diff(w)
    reasons = []
    f_flat = dF.abs() <= f_tol
    B_end = torch.where(B[:-1].abs() >= B[1:].abs(), B[:-1], B[1:])
    B_mid = torch.where((B_mid.abs() <= b_tol) & ~f_flat, B_end, B_mid)  # support of B ends in the interval
    b_zero = B_mid.abs() <= b_tol
    broken = b_zero & ~f_flat
    if broken.any():
        where = w[1:][broken]
        reasons.append(f"B = 0 where F changes (e.g. at w ≈ {where[0].item():.4g}): no P with dF = B dP")
    fill = f_flat & (b_zero | (B[:-1].abs() <= b_tol) | (B[1:].abs() <= b_tol))
    dP = torch.where(fill, dw, torch.where(b_zero, torch.zeros_like(dw), dF / torch.where(b_zero, 1.0, B_mid)))
    P = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(dP, 0)])
    monotone = bool((dP >= -tol * dw.max()).all())
    if not monotone:
        where = w[1:][dP < 0]
        reasons.append(f"P = ∫dF/B decreases (e.g. at w ≈ {where[0].item():.4g}: dF and B of opposite signs)")
    p_tol = 1e-3 * float(dw.min())
    f_spread = _varies_within_levels(P, F, p_tol, tol)
    b_spread = _varies_within_levels(P, B, p_tol, tol)
    # relative to the scale of B: next to a kink of B the last grid point of a level may differ by
    # O(max|B|·dw) from the rest when P moved by less than p_tol there
    f_ok, b_ok = f_spread <= 1e-4, b_spread <= 1e-4 * max(1.0, float(B.abs().max()))
    if not f_ok:
        reasons.append(f"F is not a function of P (varies by {f_spread:.3g} where P is constant)")
    if not b_ok:
        reasons.append(f"B is not a function of P (varies by {b_spread:.3g} where P is constant)")
    verdict = not broken.any() and monotone and f_ok and b_ok
    return Verdict(bool(verdict), monotone, f_ok, b_ok, reasons, w, P)


def check_quantizer(quantizer, progress: tuple[float, ...] = (0.0, 0.5, 1.0), **grid) -> Verdict:
    """The verdict for a registered quantizer at several schedule points: in PC++ only if at all."""
    verdicts = []
    for p in progress:
        quantizer.set_progress(p)
        verdicts.append(check_pair(quantizer.forward_map, quantizer.backward_map, **grid))
    failed = [(p, v) for p, v in zip(progress, verdicts) if not v.in_pc_plus_plus]
    if not failed:
        return verdicts[-1]
    p, v = failed[0]
    v.reasons = [f"at progress {p}: {r}" for r in v.reasons]
    return v
