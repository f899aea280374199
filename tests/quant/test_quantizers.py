"""Each method's F and B against the papers' formulas (written here independently), the autograd
gradient against B(w)·g, and B = dF/dw by finite differences where the method claims it."""

from __future__ import annotations

import math

import pytest
import torch

from src.quant.prox import prox_bnn
from src.quant import build_quantizer, registered_pairs

W = torch.linspace(-2.5, 2.5, 5001, dtype=torch.float64)
PROGRESS = (0.0, 0.3, 1.0)


def at(name: str, p: float, **params):
    q = build_quantizer(name, **params)
    q.set_progress(p)
    return q


def ss_darabi(w, mu):  # NOTES.md: SS(w) = 2σ(μw)[1 + μw(1 − σ(μw))] − 1
    s = torch.sigmoid(mu * w)
    return 2 * s * (1 + mu * w * (1 - s)) - 1


def dss(w, mu):  # PC++ Example 2, with tanh' = sech²
    a = mu * w / 2
    return mu * (1 - a * torch.tanh(a)) / torch.cosh(a) ** 2


def sgn(w):
    return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)


def irnet(p, tmin, tmax):
    t = tmin * 10 ** (p * math.log10(tmax / tmin))
    return t, max(1 / t, 1.0)


def approx_sign(x):  # Bi-Real, piecewise as in NOTES.md
    return torch.where(x < -1, -1.0, torch.where(x < 0, x * x + 2 * x, torch.where(x < 1, -x * x + 2 * x, 1.0))).to(x.dtype)


def expected(name, p):
    """(F, B) of each method at progress p, from the papers' definitions."""
    if name == "identity":
        return W, torch.ones_like(W)
    if name == "bc":
        return sgn(W), torch.ones_like(W)
    if name == "bnn":
        return sgn(W), (W.abs() <= 1).double()
    if name == "bnnp":
        return sgn(W), dss(W, 5.0)
    if name == "bnnpp":
        mu = 5 + p * 25
        return ss_darabi(W, mu), dss(W, mu)
    if name in ("bireal", "react"):
        return sgn(W), torch.clamp(2 - 2 * W.abs(), min=0)
    if name == "polyp":
        c = 10 ** (2 * p)
        return approx_sign(c * W), c * torch.clamp(2 - 2 * (c * W).abs(), min=0)
    if name in ("ede", "edep"):
        t, k = irnet(p, 0.1, 10.0)
        back = k * t * (1 - torch.tanh(t * W) ** 2)
        return (sgn(W) if name == "ede" else k * torch.tanh(t * W)), back
    if name == "rbnn":
        t, k = irnet(p, 0.01, 10.0)
        return sgn(W), k * torch.clamp(math.sqrt(2) * t - t * t * W.abs(), min=0)
    if name == "rbnn_activation":  # RBNN BinaryQuantize_a: k = 1, t_a = max(t, 1)
        t = max(irnet(p, 0.01, 10.0)[0], 1.0)
        return sgn(W), torch.clamp(math.sqrt(2) * t - t * t * W.abs(), min=0)
    if name == "pc":
        rho = 0.01 + p * (10 - 0.01)
        return None, torch.ones_like(W)  # F: tested in test_prox (L_rho)
    raise KeyError(name)


@pytest.mark.parametrize("p", PROGRESS)
@pytest.mark.parametrize("name", sorted(registered_pairs()))
def test_forward_and_backward_maps_match_the_papers(name, p):
    q = at(name, p)
    f, b = expected(name, p)
    if f is not None:
        torch.testing.assert_close(q.forward_map(W), f, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(q.backward_map(W), b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(registered_pairs()))
def test_autograd_gradient_is_b_times_upstream(name):
    q = at(name, 0.4)
    w = W.clone().requires_grad_(True)
    g = torch.randn_like(W, generator=torch.Generator().manual_seed(1))
    out = q(w)
    torch.testing.assert_close(out, q.forward_map(W))
    out.backward(g)
    torch.testing.assert_close(w.grad, q.backward_map(W) * g)


@pytest.mark.parametrize("name", ["bnnpp", "polyp", "edep", "identity"])
@pytest.mark.parametrize("p", PROGRESS)
def test_backward_is_the_derivative_of_forward(name, p):
    """Corollary 2: a C¹ forward with its derivative as backward. Central differences, away from
    the kinks of Poly+ (|c w| = 1 and 0)."""
    q = at(name, p)
    h = 1e-6
    w = W[(W.abs() > 1e-3)]
    if name == "polyp":
        c = 10 ** (2 * p)
        w = w[((c * w).abs() - 1).abs() > 1e-3]
    fd = (q.forward_map(w + h) - q.forward_map(w - h)) / (2 * h)
    torch.testing.assert_close(q.backward_map(w), fd, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("p", PROGRESS)
def test_mu_in_prox_divides_the_backward_by_mu_and_keeps_the_forward(p):
    """``mu_in='prox'``: F = SS_1∘P with P(x) = μx, B = SS_1'∘P = ∇SS_μ/μ (PC++ eq. 5-6): B·μ is F' by
    central differences, the peak B(0) is 1 (∇SS_μ(0) = μ), the forward is unchanged."""
    printed, prox = at("bnnpp", p), at("bnnpp", p, mu_in="prox")
    mu = 5 + 25 * p
    torch.testing.assert_close(prox.forward_map(W), printed.forward_map(W))
    torch.testing.assert_close(prox.backward_map(W), dss(W, mu) / mu, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(prox.maps(W)[1], prox.backward_map(W))
    h = 1e-6
    fd = (prox.forward_map(W + h) - prox.forward_map(W - h)) / (2 * h)
    torch.testing.assert_close(prox.backward_map(W) * mu, fd, atol=1e-5, rtol=1e-5)
    zero = torch.zeros(1, dtype=torch.float64)
    assert float(printed.backward_map(zero)) == pytest.approx(mu) and float(prox.backward_map(zero)) == pytest.approx(1.0)
    bnnp = at("bnnp", p, mu_in="prox")
    torch.testing.assert_close(bnnp.backward_map(W), dss(W, 5.0) / 5.0, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(bnnp.forward_map(W), sgn(W))


def test_mu_in_refuses_other_values():
    with pytest.raises(ValueError, match=r"mu_in='pro' is not a valid choice.*Valid choices: transform, prox"):
        build_quantizer("bnnpp", mu_in="pro")


def test_bnn_is_hardtanh_of_its_proximal_quantizer():
    """PC++ Example 1: (sign, 1_[−1,1]) = (T∘P, T'∘P), T = hard tanh, P of eq. (9)."""
    q = at("bnn", 0.5)
    for mu in (1.5, 4.0, 100.0):
        p = prox_bnn(W, mu)
        torch.testing.assert_close(q.forward_map(W), p.clamp(-1, 1))
        t_prime = (p.abs() <= 1).double()
        torch.testing.assert_close(q.backward_map(W), t_prime)


def test_bnnpp_tends_to_sign_and_bnnp_is_not_monotone():
    q = at("bnnpp", 1.0)  # μ = 30
    far = W[W.abs() > 0.5]
    assert (q.forward_map(far) - sgn(far)).abs().max() < 1e-4
    ss = at("bnnpp", 0.0).forward_map(W)  # μ = 5: max ≈ 1.1997 at μ|w| ≈ 2.40 (NOTES.md)
    assert abs(ss.max().item() - 1.1997) < 1e-3
    assert abs(5 * W[ss.argmax()].item() - 2.40) < 0.01


def test_react_shift_is_learned_per_channel():
    q = build_quantizer("react")
    q.bind_channels(3, channel_dim=1)
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q.shift.copy_(torch.tensor([0.5, -0.5, 0.0]))
    torch.testing.assert_close(q.binarize(x), sgn(x + q.shift.view(1, 3, 1, 1)))
    q(x).sum().backward()
    shifted = x + q.shift.detach().view(1, 3, 1, 1)
    want = torch.clamp(2 - 2 * shifted.abs(), min=0).sum(dim=(0, 2, 3))
    torch.testing.assert_close(q.shift.grad, want)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown quantizer pair 'bnnx'; registered pairs: bc, bireal, bnn"):
        build_quantizer("bnnx")
