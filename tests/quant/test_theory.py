"""Corollary 1 verdicts of the theory helper for every method, plus hand-made pairs."""

from __future__ import annotations

import pytest
import torch

from src.quant import build_quantizer
from src.quant.theory import check_pair, check_quantizer

IN = ["identity", "bc", "pc", "bnn", "bnnpp", "polyp", "edep"]
OUT = ["bnnp", "bireal", "rbnn", "rbnn_activation", "ede", "react"]


@pytest.mark.parametrize("name", IN)
def test_in_pc_plus_plus(name):
    verdict = check_quantizer(build_quantizer(name))
    assert verdict.in_pc_plus_plus, verdict.reasons
    assert verdict.monotone


@pytest.mark.parametrize("name", OUT)
def test_not_in_pc_plus_plus(name):
    verdict = check_quantizer(build_quantizer(name))
    assert not verdict.in_pc_plus_plus
    assert not verdict.b_function_of_p and any("B is not a function of P" in r for r in verdict.reasons)


@pytest.mark.parametrize("mu_in", ["transform", "prox"])
def test_bnnpp_is_in_pc_plus_plus_wherever_mu_sits(mu_in):
    """Corollary 1 for both readings of BNN++ (F = SS_μ): B = SS_μ' gives P = x, B = SS_μ'/μ gives
    P = μx — monotone either way; BNN+ (F = sign) stays out with either backward."""
    for p in (0.0, 0.4, 1.0):
        verdict = check_quantizer(build_quantizer("bnnpp", mu_in=mu_in), progress=(p,))
        assert verdict.in_pc_plus_plus and verdict.monotone, verdict.reasons
        mu = 5 + 25 * p
        slope = mu if mu_in == "prox" else 1.0
        lobe = (mu * verdict.w).abs() < 2  # where B > 0 (outside it F is flat to the grid and P is filled freely)
        w, P = verdict.w[lobe], verdict.P[lobe]
        torch.testing.assert_close(P - P[0], slope * (w - w[0]), rtol=1e-6, atol=1e-6)
    assert not check_quantizer(build_quantizer("bnnp", mu_in="prox")).in_pc_plus_plus


def test_bnn_proximal_map_is_recovered_on_the_support_of_b():
    v = check_quantizer(build_quantizer("bnn"), progress=(0.0,))
    inside = v.w.abs() < 0.999
    # P is constant on each side of 0 inside [−1, 1] and jumps by ΔF/B(0) = 2 at 0 (Example 1)
    left, right = v.P[inside & (v.w < 0)], v.P[inside & (v.w > 0)]
    assert left.max() == left.min() and right.max() == right.min()
    assert abs((right[0] - left[0]).item() - 2.0) < 1e-9


def test_b_zero_where_f_moves_is_rejected():
    v = check_pair(torch.tanh, lambda w: torch.zeros_like(w))
    assert not v.in_pc_plus_plus and "B = 0 where F changes" in v.reasons[0]


def test_negative_slope_of_p_is_rejected():
    v = check_pair(lambda w: w, lambda w: -torch.ones_like(w))
    assert not v.in_pc_plus_plus and not v.monotone


@pytest.mark.parametrize("n", [30_001, 29_999])  # ±1 and the kinks of Poly+ on the grid, or between points
def test_verdicts_at_generic_schedule_points_and_unaligned_grids(n):
    """Kinks of B between grid points (Poly+ at |c w| = 1, BNN at |w| = 1) must not flip a verdict."""
    for name in IN + OUT:
        verdict = check_quantizer(build_quantizer(name), progress=(0.13, 0.37, 0.61), lo=-2.9, hi=3.1, n=n)
        assert verdict.in_pc_plus_plus == (name in IN), (name, verdict.reasons)


@pytest.mark.parametrize("beta", [0.3, -0.7])
def test_a_shift_keeps_the_verdict_of_the_unshifted_pair(beta):
    """ReAct's shift x → x + β translates P, so (sign, ApproxSign') at x + β fails like Bi-Real, while a
    shifted BNN pair (sign, 1_[−1,1]) at x + β stays in PC++."""
    react = build_quantizer("react")
    shifted = check_pair(lambda x: react.forward_map(x + beta), lambda x: react.backward_map(x + beta), n=30_001)
    assert not shifted.in_pc_plus_plus and not shifted.b_function_of_p
    bnn = build_quantizer("bnn")
    assert check_pair(lambda x: bnn.forward_map(x + beta), lambda x: bnn.backward_map(x + beta), n=30_001).in_pc_plus_plus
