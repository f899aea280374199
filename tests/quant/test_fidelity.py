"""Each method's defaults (configs/quantizer/<method>.yaml through the engine's layer factory) against
what its original code does, on one grid: a Conv2d(64, 64, 3) Kaiming-initialised (fan-in, ReLU gain:
σ = √(2/576) ≈ 0.059, so every |w| < 1), upstream gradient of ones on the layer's weights Ŵ. The
originals (NOTES.md, plan of issue 11): BinaryNet/BiBench and ProxQuant train ±1 weights on the raw
latent w; Bi-Real and ReActNet s_c·sign(W) with the gradient of clamp(W, −1, 1); IR-Net standardises
W per channel with a power-of-two scale; RBNN standardises W, scales by a learned α and standardises
its inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from hydra.utils import instantiate

from conftest import compose_train
from src.core import config_tree
from src.engine.build import build_update_rule, layer_factory
from src.quant.hooks import set_progress
from src.quant.quantizers import RBNNActivation, approx_sign_grad, sign_swish_grad
from src.quant.updates import LinearQuantizerProxUpdate, ProximalUpdate

BINARIZING = [m for m in config_tree.methods() if m != "fp"]
NO_SCALE = ["bc", "pc", "bnn", "bnnp", "pq", "proxquant", "rpc", "conq", "proxgen", "polyp", "bireal_appf",
            "react_appf"]


def kaiming_conv() -> nn.Conv2d:
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, bias=False).double()
    nn.init.kaiming_normal_(conv.weight)
    return conv


def grid_layer(method: str, task: str = "bw", *overrides: str, conv: nn.Conv2d | None = None):
    cfg = compose_train([f"quantizer={method}", f"task={task}", *overrides])
    return layer_factory(cfg.quantizer, cfg.task)("conv", kaiming_conv() if conv is None else conv)


def weight_grad(layer, p: float = 0.0) -> torch.Tensor:
    set_progress(layer, p)
    layer.zero_grad()
    layer.effective_weight().backward(torch.ones_like(layer.weight))
    return layer.weight.grad


def channel_mean_abs(w: torch.Tensor) -> torch.Tensor:
    return w.detach().abs().mean(dim=(1, 2, 3))


def test_the_grid_is_kaiming():
    w = kaiming_conv().weight.detach()
    assert w.abs().max() < 0.35 and abs(float(w.std()) - math.sqrt(2 / 576)) < 0.002


@pytest.mark.parametrize("method", BINARIZING)
def test_every_weight_gets_a_gradient_at_kaiming_init(method):
    """No original zeroes a weight's gradient at the start: window B's (BNN 1_[−1,1], Bi-Real's clamp,
    ApproxSign') act on the raw |w| < 1, the standardised ones (IR-Net, RBNN) are positive for every u."""
    assert bool((weight_grad(grid_layer(method)) != 0).all())


@pytest.mark.parametrize("method", ["bnn", "bireal_appf"])
def test_normalised_argument_would_zero_the_gradient_of_43_percent(method):
    """The former default (F and B at w/mean|w|) with a window B: only |w| < mean|w| pass, P(|z| < E|z|) ≈ 0.575."""
    g = weight_grad(grid_layer(method, "bw", "quantizer.normalize=layer_mean_abs"))
    assert abs(float((g != 0).double().mean()) - 0.575) < 0.01


@pytest.mark.parametrize("method", NO_SCALE)
def test_plain_plus_minus_one_weights(method):
    layer = grid_layer(method).eval()
    assert layer.weight_scale() is None
    with torch.no_grad():
        assert set(layer.effective_weight().unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("method", ["bc", "bnn", "pc", "pq", "proxquant", "rpc", "conq", "proxgen"])
def test_straight_through_methods_pass_the_gradient_unchanged(method):
    torch.testing.assert_close(weight_grad(grid_layer(method)), torch.ones(64, 64, 3, 3, dtype=torch.float64))


def test_bnnp_sign_swish_backward_on_the_raw_weights():
    layer = grid_layer("bnnp")    # larq's swish_sign: β = 5 on the raw values
    torch.testing.assert_close(weight_grad(layer, 0.0), sign_swish_grad(layer.weight.detach(), 5.0))


def test_bnnpp_is_protocol_one_on_cnns_too():
    """Ŵ = s·SS_μ(w/s), s = mean|w| per layer (detached): binary weights ±s, and ∂Ŵ/∂w = ∇SS_μ(w/s)."""
    layer = grid_layer("bnnpp")
    w = layer.weight.detach()
    s = w.abs().mean()
    torch.testing.assert_close(weight_grad(layer, 0.0), sign_swish_grad(w / s, 5.0))
    torch.testing.assert_close(weight_grad(layer, 0.6), sign_swish_grad(w / s, 20.0))   # μ = 5 + 25·p
    with torch.no_grad():
        assert set(layer.eval().effective_weight().unique().tolist()) == {-float(s), float(s)}


@pytest.mark.parametrize("method", ["bireal", "react"])
def test_bireal_and_react_weights_as_their_code(method):
    """s_c = mean|W_c| (detached) times sign(W) forward; the gradient is clamp(W, −1, 1)'s, 1_{|W|≤1},
    without the factor s. Weights ×16 put about 29 % of them outside [−1, 1]."""
    conv = kaiming_conv()
    with torch.no_grad():
        conv.weight.mul_(16)
    layer = grid_layer(method, conv=conv)
    w = layer.weight.detach()
    assert 0.05 < float((w.abs() > 1).double().mean()) < 0.5
    torch.testing.assert_close(layer.weight_scale(), channel_mean_abs(w))
    torch.testing.assert_close(weight_grad(layer), (w.abs() <= 1).double())
    layer.eval()
    with torch.no_grad():
        want = channel_mean_abs(w).view(-1, 1, 1, 1) * torch.where(w >= 0, 1.0, -1.0).double()
        torch.testing.assert_close(layer.effective_weight(), want)


def test_bireal_and_react_activations():
    bireal = instantiate(compose_train(["quantizer=bireal", "task=bwa"]).quantizer.activation)
    x = torch.tensor([-1.5, -0.5, 0.0, 0.5, 0.99], dtype=torch.float64)
    torch.testing.assert_close(bireal.backward_map(x), torch.tensor([0.0, 1.0, 2.0, 1.0, 0.02], dtype=torch.float64))
    react = instantiate(compose_train(["quantizer=react", "task=bwa"]).quantizer.activation)
    assert react.learnable_shift
    assert float(approx_sign_grad(torch.tensor(0.5))) == 1.0


def standardized(w: torch.Tensor) -> torch.Tensor:
    c = w - w.mean(dim=(1, 2, 3), keepdim=True)
    return c / c.std(dim=(1, 2, 3), keepdim=True)


@pytest.mark.parametrize("task,t_min", [("bw", 0.1), ("bwa", 0.001), ("bwaa", 0.001)])
def test_ede_as_irnet(task, t_min):
    """u = standardised W (autograd), s_c = 2^round(log2 mean|u_c|) = 1 on a Gaussian layer (mean|u| ≈ 0.80),
    ∂ℓ/∂u = k·t·(1 − tanh²(t·u))·s; T_min 0.1 for binary weights (IR-Net 1w32a), 1e−3 with binary
    activations (IR-Net 1w1a), Tmax = 10."""
    layer = grid_layer("ede", task)
    assert layer.weight_quantizer.t_min == t_min and layer.weight_quantizer.t_max == 10.0
    if task != "bw":
        assert layer.act_quantizer.t_min == t_min
    torch.testing.assert_close(layer.weight_scale(), torch.ones(64, dtype=torch.float64))
    p = 0.3
    t = 10 ** (math.log10(t_min) + p * (1 - math.log10(t_min)))
    k = max(1 / t, 1.0)
    w = layer.weight.detach().clone().requires_grad_(True)
    u = standardized(w)
    (want,) = torch.autograd.grad(u, w, k * t * (1 - torch.tanh(t * u.detach()) ** 2))
    torch.testing.assert_close(weight_grad(layer, p), want)
    assert bool((weight_grad(layer, 0.0) != 0).all())


def test_rbnn_as_its_code():
    """Weights: u = standardised W, ∂ℓ/∂u = k·max(√2·t − t²|u|, 0)·α_c; α learnable, initialised to
    mean|W_c|. Activations: standardised per sample, B = max(√2·t_a − t_a²|a'|, 0) with k = 1, t_a = max(t, 1)."""
    layer = grid_layer("rbnn", "bwa")
    w0 = layer.weight.detach()
    assert layer.learned_scale.requires_grad
    torch.testing.assert_close(layer.learned_scale.detach(), channel_mean_abs(w0))
    assert layer.activation_normalize == "sample_standardize" and isinstance(layer.act_quantizer, RBNNActivation)
    p = 0.2
    t = 10 ** (math.log10(0.01) + p * 3)  # 0.04: k = 25
    k = 1 / t
    w = w0.clone().requires_grad_(True)
    u = standardized(w)
    back = k * (math.sqrt(2) * t - t * t * u.detach().abs()).clamp_min(0) * layer.learned_scale.detach().view(-1, 1, 1, 1)
    (want,) = torch.autograd.grad(u, w, back)
    torch.testing.assert_close(weight_grad(layer, p), want)
    a = torch.linspace(-2, 2, 9, dtype=torch.float64)
    layer.act_quantizer.set_progress(p)
    torch.testing.assert_close(layer.act_quantizer.backward_map(a), (math.sqrt(2) - a.abs()).clamp_min(0))
    assert not torch.allclose(layer.act_quantizer.backward_map(a), k * (math.sqrt(2) * t - t * t * a.abs()).clamp_min(0))


def test_ptb_trains_the_fp_weights_and_evaluates_plus_minus_mean_abs():
    layer = grid_layer("ptb")
    w = layer.weight.detach()
    torch.testing.assert_close(layer.effective_weight().detach(), w)  # s·(w/s): plain FP training
    torch.testing.assert_close(weight_grad(layer), torch.ones_like(w))
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer.effective_weight().abs(), torch.full_like(w, float(w.abs().mean())))


def test_bnnpp_mu_in_prox_on_the_grid():
    layer = grid_layer("bnnpp", "bwa", "quantizer.activation.mu_in=prox")
    assert layer.weight_quantizer.mu_in == "transform" and layer.act_quantizer.mu_in == "prox"
    zero = torch.zeros(1, dtype=torch.float64)
    assert float(layer.weight_quantizer.backward_map(zero)) == 5.0 and float(layer.act_quantizer.backward_map(zero)) == 1.0


@pytest.mark.parametrize("method,rule", [("pq", LinearQuantizerProxUpdate), ("proxquant", ProximalUpdate)])
def test_pq_is_pcpp_linear_quantizer_and_proxquant_is_its_own_prox(method, rule):
    cfg = compose_train([f"quantizer={method}", "task=bw"])
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 2, 3))
    from src.quant.surgery import quantize_model
    quantize_model(model, layer_factory(cfg.quantizer, cfg.task))
    built = build_update_rule(cfg.quantizer, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert type(built) is rule and built.clip and built.units == ["none"]
    if method == "pq":  # PC++ §4.1: ρ 0.01 → 10 linearly, no freeze
        assert (built.rho_start, built.rho_end, built.varrho, built.freeze_at) == (0.01, 10.0, 0.0, None)
        built.set_progress(0.5)
        assert built.rho == pytest.approx(5.005)
    else:  # ProxQuant: W-shaped prox, λ 0 → 0.03, frozen signs from epoch 200 of 300
        assert built.prox.__name__ == "prox_proxquant" and (built.lam_start, built.lam_end) == (0.0, 0.03)
        assert built.freeze_at == 0.667
