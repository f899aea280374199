"""Proximal maps against the papers' formulas and against a brute-force argmin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.quant.prox import linear_quantizer, prox_bnn, prox_conq, prox_proxquant, sign

X = np.linspace(-3, 3, 600_001)  # brute-force grid, step 1e-5


def brute_force(z: float, s: float, r) -> float:
    return X[np.argmin(0.5 * (X - z) ** 2 + s * r(X))]


def r_w(x):  # ProxQuant's W-shaped regularizer
    return np.minimum(np.abs(x - 1), np.abs(x + 1))


def r_conq(x):  # ConQ's concave regularizer
    return np.maximum(1 - x ** 2, np.abs(x) - 1)


ZS = np.linspace(-2.5, 2.5, 41) + 0.0123  # avoid exact ties at the kinks


@pytest.mark.parametrize("s", [0.01, 0.1, 0.3, 0.45])
def test_prox_proxquant_is_the_argmin(s):
    got = prox_proxquant(torch.tensor(ZS, dtype=torch.float64), s).numpy()
    want = np.array([brute_force(z, s, r_w) for z in ZS])
    np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("s", [0.01, 0.1, 0.3, 0.45])
def test_prox_conq_is_the_argmin(s):
    got = prox_conq(torch.tensor(ZS, dtype=torch.float64), s).numpy()
    want = np.array([brute_force(z, s, r_conq) for z in ZS])
    np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("s", [0.5, 0.7, -0.1])
def test_prox_conq_refuses_strength_outside_range(s):
    with pytest.raises(ValueError, match=r"must lie in \[0, 1/2\)"):
        prox_conq(torch.zeros(3), s)


def test_sign_is_plus_minus_one_with_plus_one_at_zero():
    assert sign(torch.tensor([-2.0, -0.0, 0.0, 3.0])).tolist() == [-1.0, 1.0, 1.0, 1.0]


def test_prox_bnn_eq9():
    w = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 2.5])
    mu = 4.0
    want = [-3 / 4 - 3 / 4, -1, -1, 1, 1, 1, 2.5 / 4 + 3 / 4]
    torch.testing.assert_close(prox_bnn(w, mu), torch.tensor(want))


def test_linear_quantizer_limits_and_shape():
    w = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    torch.testing.assert_close(linear_quantizer(w, 0.0, 0.0), w)  # identity
    for rho, varrho in ((1.0, 0.0), (3.0, 0.0), (0.0, 1.0), (0.2, 2.0)):
        torch.testing.assert_close(linear_quantizer(w, rho, varrho), sign(w))
    # rho = 0.5, varrho = 0.25: -1 on [-1, -0.5], line to (0, -0.25), jump to 0.25, line to (0.5, 1)
    probe = torch.tensor([-0.75, -0.5, -0.25, -1e-9, 0.0, 0.25, 0.5, 0.8, 1.2, -2.0], dtype=torch.float64)
    want = [-1, -1, -1 + 0.25 * (0.75 / 0.5), -0.25, 0.25, 0.25 + 0.25 * (0.75 / 0.5), 1, 1, 1, -1.5]
    torch.testing.assert_close(linear_quantizer(probe, 0.5, 0.25), torch.tensor(want, dtype=torch.float64),
                               atol=1e-8, rtol=0)
    grid = torch.linspace(-3, 3, 10_001, dtype=torch.float64)
    for rho in (0.01, 0.3, 0.9, 5.0):
        assert (torch.diff(linear_quantizer(grid, rho, 0.1)) >= 0).all(), "L_rho must be monotone"


def test_linear_quantizer_outside_the_unit_interval_moves_by_rho_toward_plus_minus_one():
    """|w| > 1 (our choice, NOTES.md): sign(w)·max(|w| − ρ, 1) — the identity at ρ = 0, continuous at ±1,
    and ±1 for every |w| ≤ 1 + ρ, so the ρ schedule ends with binary weights everywhere."""
    w = torch.tensor([-4.0, -1.5, -1.0, 1.0, 1.05, 2.0, 3.5], dtype=torch.float64)
    torch.testing.assert_close(linear_quantizer(w, 0.0), w)
    torch.testing.assert_close(linear_quantizer(w, 0.1), torch.tensor([-3.9, -1.4, -1, 1, 1, 1.9, 3.4], dtype=torch.float64))
    torch.testing.assert_close(linear_quantizer(w, 10.0), sign(w))
    edge = torch.tensor([1.0, 1.0 + 1e-9, -1.0, -1.0 - 1e-9], dtype=torch.float64)
    for rho in (0.0, 0.3, 2.0):
        out = linear_quantizer(edge, rho)
        assert abs(float(out[1] - out[0])) < 1e-8 and abs(float(out[3] - out[2])) < 1e-8
