"""Every update rule on a tiny least-squares model: three iterates against the sequence computed
by hand (numpy, float64) from the paper's update equation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.engine.build import method_pair
from src.quant.updates import (LatentUpdate, LinearQuantizerProxUpdate, NullUpdate, ProxGenUpdate, ProximalUpdate,
                               ReverseProxConnect)

A = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8], [0.7, 0.1, 0.4], [-0.6, 0.9, 0.2]])
Y = np.array([0.9, -1.1, 0.5, 0.3])
W0 = np.array([0.3, -0.8, 1.4])
LR = 0.1


def grad(v):  # ∇ of ℓ(v) = ½‖A v − y‖² / n
    return A.T @ (A @ v - Y) / len(Y)


def run(quantizer_name: str, rule_cls, steps=3, optimizer="sgd", bias=False, **rule_kw):
    """Three real steps through the engine's hooks; returns the latent weights after each step.
    ``bias`` adds a trained offset (a parameter that keeps training after a freeze)."""
    w = torch.nn.Parameter(torch.tensor(W0))
    b = torch.nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=bias)
    q = method_pair(quantizer_name)  # the pair of configs/quantizer/<method>.yaml (bnnpp: μ 5 → 30)
    a, y = torch.tensor(A), torch.tensor(Y)
    opt = torch.optim.SGD([w, b], lr=LR) if optimizer == "sgd" else torch.optim.Adam([w, b], lr=LR)
    rule = rule_cls([w], opt, **rule_kw)
    out = []
    for t in range(steps):
        p = t / steps
        q.set_progress(p)
        rule.set_progress(p)
        loss = 0.5 * ((a @ q(w) + b - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        rule.before_step()
        opt.step()
        rule.after_step(LR)
        out.append(w.detach().numpy().copy())
    return out


def test_pcpp_latent_update_eq7():
    """BNN++: w*_{t+1} = w*_t − η B(w*_t) ∇ℓ(F(w*_t)), F = SS, B = ∇SS, μ_t = 5 + 25 t/3."""
    def ss(v, mu):
        a = mu * v / 2
        return a / np.cosh(a) ** 2 + np.tanh(a)

    def dss(v, mu):
        a = mu * v / 2
        return mu * (1 - a * np.tanh(a)) / np.cosh(a) ** 2

    w, want = W0.copy(), []
    for t in range(3):
        mu = 5 + 25 * t / 3
        w = w - LR * dss(w, mu) * grad(ss(w, mu))
        want.append(w.copy())
    np.testing.assert_allclose(run("bnnpp", LatentUpdate), want, rtol=1e-12, atol=1e-12)


def test_binaryconnect_with_clip():
    w, want = W0.copy(), []
    for _ in range(3):
        w = np.clip(w - LR * grad(np.where(w >= 0, 1.0, -1.0)), -1, 1)
        want.append(w.copy())
    np.testing.assert_allclose(run("bc", LatentUpdate, clip=True), want, rtol=1e-12, atol=1e-12)


def lq(v, rho):  # L_rho with varrho = 0 (PC++ eq. 10, verbal definition); sign(v)·max(|v| − ρ, 1) outside [−1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(v < 0, np.where(v <= min(0, -1 + rho), -1.0, -1 + (v - min(0, -1 + rho)) / -min(0, -1 + rho) if rho < 1 else -1.0),
                       np.where(v >= max(0, 1 - rho), 1.0, v / max(0, 1 - rho) if rho < 1 else 1.0))
    return np.where(np.abs(v) > 1, np.sign(v) * np.maximum(np.abs(v) - rho, 1.0), out)


def test_reverse_proxconnect():
    """rPC: w*_{t+1} = P(w*_t) − η ∇ℓ(w*_t), P = L_ρ, ρ_t = 0.01 + 9.99·t/3 (gradient at w*)."""
    w, want = W0.copy(), []
    for t in range(3):
        rho = 0.01 + 9.99 * t / 3
        w = lq(w, rho) - LR * grad(w)
        want.append(w.copy())
    got = run("rpc", ReverseProxConnect, rho_start=0.01, rho_end=10.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rho_start,rho_end,steps", [(0.01, 10.0, 3), (0.01, 0.6, 6)])
def test_pq_as_in_pcpp_is_the_prox_gradient_loop_with_the_linear_quantizer(rho_start, rho_end, steps):
    """PQ (PC++ §2, §4.1): w_{t+1} = clip(L_{ρ_t}(w_t − η∇ℓ(w_t))), ρ_t = ρ0 + (ρT − ρ0)·t/T — gradient at
    the continuous weights (identity pair), no lr in the prox."""
    w, want = W0.copy(), []
    for t in range(steps):
        rho = rho_start + (rho_end - rho_start) * t / steps
        w = np.clip(lq(w - LR * grad(w), rho), -1, 1)
        want.append(w.copy())
    got = run("pq", LinearQuantizerProxUpdate, steps=steps, rho_start=rho_start, rho_end=rho_end)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if rho_end >= 1:
        assert set(np.unique(got[-1])) <= {-1.0, 1.0}  # ρ ≥ 1: L_ρ is sign on [−1, 1]


def test_rules_act_in_the_layers_units():
    """With ``units`` = layer_mean_abs a rule maps u = w/n (n = mean|w| just before the map) and returns
    n·map(u): clip is |u| ≤ 1, the LQ prox is n·L_ρ(u), rPC steps from n_old·L_ρ(u_old), freezing gives n·sign(u)."""
    start = torch.tensor([0.3, -0.8, 1.4, -0.05], dtype=torch.float64)

    def one_step(rule_cls, **kw):
        w = torch.nn.Parameter(start.clone())
        opt = torch.optim.SGD([w], lr=LR)
        rule = rule_cls([w], opt, units=["layer_mean_abs"], **kw)
        rule.set_progress(0.5)
        w.grad = torch.tensor([1.0, -2.0, 0.5, 0.3], dtype=torch.float64)
        rule.before_step()
        opt.step()
        stepped = w.detach().clone()
        rule.after_step(LR)
        return w.detach().numpy(), stepped.numpy()

    got, z = one_step(LatentUpdate, clip=True)
    n = np.abs(z).mean()
    np.testing.assert_allclose(got, n * np.clip(z / n, -1, 1), rtol=1e-12)
    got, z = one_step(LinearQuantizerProxUpdate, rho_start=0.0, rho_end=0.4, clip=False)
    n = np.abs(z).mean()
    np.testing.assert_allclose(got, n * lq(z / n, 0.2), rtol=1e-12)
    got, z = one_step(ReverseProxConnect, rho_start=0.0, rho_end=0.4)
    old = start.numpy()
    n_old = np.abs(old).mean()
    np.testing.assert_allclose(got, n_old * lq(old / n_old, 0.2) + (z - old), rtol=1e-12)

    w = torch.nn.Parameter(start.clone())
    rule = ProximalUpdate([w], None, units=["layer_mean_abs"], freeze_at=0.5)
    rule.set_progress(0.5)
    np.testing.assert_allclose(w.detach().numpy(), np.abs(start.numpy()).mean() * np.sign(start.numpy()))
    assert not w.requires_grad


def prox_w(v, s):
    e = np.abs(v) - 1
    return np.where(v >= 0, 1.0, -1.0) * (1 + np.sign(e) * np.maximum(np.abs(e) - s, 0))


def prox_c(v, s):
    a = np.abs(v)
    return np.where(a < 1 - 2 * s, v / (1 - 2 * s), np.where(a <= 1 + s, np.where(v >= 0, 1.0, -1.0), v - s * np.sign(v)))


@pytest.mark.parametrize("prox,ref,clip", [("proxquant", prox_w, True), ("conq", prox_c, False)])
def test_proximal_gradient(prox, ref, clip):
    """PQ / ConQ: w_{t+1} = clip(prox_{ηλ_t r}(w_t − η ∇ℓ(w_t))), λ_t = 0.5 + 1.0·t/3."""
    w, want = W0.copy(), []
    for t in range(3):
        lam = 0.5 + 1.0 * t / 3
        w = ref(w - LR * grad(w), LR * lam)
        w = np.clip(w, -1, 1) if clip else w
        want.append(w.copy())
    got = run("proxquant", ProximalUpdate, prox=prox, lam_start=0.5, lam_end=1.5, clip=clip)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_proxgen_prox_in_adam_metric():
    """ProxGen: Adam step z, then prox_W with elementwise strength η λ / (√v̂ + ε)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    w, m, v, want = W0.copy(), 0.0, 0.0, []
    for t in range(1, 4):
        g = grad(w)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        d = np.sqrt(v / (1 - b2 ** t)) + eps
        z = w - LR * (m / (1 - b1 ** t)) / d
        w = np.clip(prox_w(z, LR * 0.2 / d), -1, 1)
        want.append(w.copy())
    got = run("proxgen", ProxGenUpdate, optimizer="adam", lam_start=0.2, lam_end=0.2)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_freeze_stage_binarizes_and_stops_the_weights():
    got = run("proxquant", ProximalUpdate, steps=3, bias=True, lam_start=0.1, lam_end=0.1, freeze_at=0.5)
    # steps at p = 0, 1/3 update w; at p = 2/3 ≥ 0.5 the weights became sign(w) and stay there
    assert set(np.unique(got[2])) <= {-1.0, 1.0}
    np.testing.assert_array_equal(got[2], np.where(got[1] >= 0, 1.0, -1.0))


@pytest.mark.parametrize("make_rule", [LatentUpdate, lambda weights, optimizer: NullUpdate()], ids=["ptb", "null"])
def test_ptb_and_no_update_rule_are_plain_training(make_rule):
    """w_{t+1} = w_t − η ∇ℓ(w_t): PTB's latent update with an identity F, and the null rule."""
    w, want = W0.copy(), []
    for _ in range(3):
        w = w - LR * grad(w)
        want.append(w.copy())
    np.testing.assert_allclose(run("ptb", make_rule), want, rtol=1e-12, atol=1e-12)


def test_null_update_has_no_state():
    rule = NullUpdate()
    rule.load_state_dict({})
    assert rule.state_dict() == {}


def test_proxgen_has_no_prox_choice():
    """ProxGen is ProxQuant's W-shaped prox in Adam's metric; a ``prox`` key is refused rather than
    ignored (ConQ's prox needs a strength below ½, which lr·λ/(√v̂ + ε) exceeds)."""
    w = torch.nn.Parameter(torch.tensor(W0))
    with pytest.raises(TypeError, match="prox"):
        ProxGenUpdate([w], torch.optim.Adam([w]), prox="conq")


def test_proxgen_refuses_sgd_state():
    with pytest.raises(ValueError, match="ProxGen needs an Adam-family optimizer"):
        run("proxgen", ProxGenUpdate, optimizer="sgd")


def test_proxgen_refuses_a_negative_strength_on_the_host():
    """Its elementwise strengths lr·λ/(√v̂ + ε) have the sign of lr·λ: checked there, not on each tensor
    (which would wait for the device at every step)."""
    with pytest.raises(ValueError, match=r"ProxGen's prox strength lr·λ must be >= 0, got lr=0.1, λ=-0.2"):
        run("proxgen", ProxGenUpdate, optimizer="adam", lam_start=-0.2, lam_end=-0.2)
