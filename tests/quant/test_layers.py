"""Quantized Conv2d/Linear (BW, BWA) against the layer formula written out here independently:
u = N(w); training forward conv(x_q, s ⊙ F(u)) + b with ∂ℓ/∂w = (∂u/∂w)ᵀ[B(u) ⊙ s̃ ⊙ ∂ℓ/∂Ŵ]
(s̃ = s, or 1 with scale_in_backward=false); binary evaluation conv(sign(x), s ⊙ sign(u)) + b."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import compose_train
from src.core.errors import UserError
from src.engine.build import layer_factory
from src.quant.layers import quantized_copy
from src.quant.quantizers import BNN

MU = 5.0  # BNN++ at progress 0


def ss(v):  # SS_μ written as Darabi's form (NOTES.md), independent of src.quant
    s = torch.sigmoid(MU * v)
    return 2 * s * (1 + MU * v * (1 - s)) - 1


def dss(v):  # PC++ Example 2
    a = MU * v / 2
    return MU * (1 - a * torch.tanh(a)) / torch.cosh(a) ** 2


def sgn(v):
    return torch.where(v >= 0, 1.0, -1.0).to(v)


def per_channel(v, fn):
    return torch.stack([fn(v[c]) for c in range(v.shape[0])])


def reference_unit(w, normalize):
    if normalize == "none":
        return w
    if normalize == "layer_mean_abs":
        return w / w.detach().abs().mean()
    if normalize == "channel_mean_abs":
        return w / per_channel(w.detach(), lambda c: c.abs().mean()).view(-1, 1, 1, 1)
    n = w[0].numel()
    mean = per_channel(w, lambda c: c.sum() / n).view(-1, 1, 1, 1)
    std = per_channel(w - mean, lambda c: torch.sqrt((c ** 2).sum() / (n - 1))).view(-1, 1, 1, 1)
    return (w - mean) / std  # unbiased std, in autograd (IR-Net, RBNN)


def reference_scale(w, u, scale):
    w, u = w.detach(), u.detach()
    if scale == "none":
        return torch.ones(w.shape[0], dtype=w.dtype)
    if scale == "layer":
        return w.abs().mean().expand(w.shape[0])
    if scale in ("channel", "channel_learnable"):
        return per_channel(w, lambda c: c.abs().mean())
    return per_channel(u, lambda c: torch.tensor(2.0 ** round(math.log2(float(c.abs().mean()))), dtype=w.dtype))


def make_layer(task, scale, normalize, scale_in_backward=True):
    cfg = compose_train(["quantizer=bnnpp", f"task={task}", f"quantizer.scale={scale}",
                         f"quantizer.normalize={normalize}", f"quantizer.scale_in_backward={scale_in_backward}"])
    torch.manual_seed(0)
    fp = nn.Conv2d(4, 3, 3, padding=1, bias=True).double()
    nn.init.normal_(fp.bias)
    return layer_factory(cfg.quantizer, cfg.task)("conv", fp)


CASES = [("none", "none"), ("layer", "layer_mean_abs"), ("channel", "channel_mean_abs"), ("layer", "none"),
         ("channel", "none"), ("channel_pow2", "channel_standardize"), ("channel_learnable", "channel_standardize"),
         ("none", "channel_standardize")]


@pytest.mark.parametrize("scale_in_backward", [True, False])
@pytest.mark.parametrize("scale,normalize", CASES)
@pytest.mark.parametrize("task", ["bw", "bwa"])
def test_conv_equals_the_layer_formula_in_training_and_binary_evaluation(task, scale, normalize, scale_in_backward):
    layer = make_layer(task, scale, normalize, scale_in_backward)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    u0 = reference_unit(w0, normalize)
    s = reference_scale(w0, u0, scale).view(-1, 1, 1, 1)
    if scale == "channel_learnable":
        torch.testing.assert_close(layer.learned_scale.detach(), s.flatten())

    layer.eval()
    with torch.no_grad():
        xb = x if task == "bw" else sgn(x)
        torch.testing.assert_close(layer(x), F.conv2d(xb, s * sgn(u0), b0, padding=1))

    layer.train()
    layer(x).square().sum().backward()
    w = w0.clone().requires_grad_(True)
    u = reference_unit(w, normalize)
    w_hat = (s * ss(u.detach())).requires_grad_(True)
    xq = x if task == "bw" else ss(x)
    F.conv2d(xq, w_hat, b0, padding=1).square().sum().backward()
    g_q = w_hat.grad * (s if scale_in_backward else 1.0)
    (g_w,) = torch.autograd.grad(u, w, dss(u.detach()) * g_q)
    torch.testing.assert_close(layer.weight.grad, g_w)
    if scale == "channel_learnable":  # α_c receives Σ ∂ℓ/∂Ŵ ⊙ F(u) over its channel, whatever scale_in_backward
        torch.testing.assert_close(layer.learned_scale.grad, (w_hat.grad * ss(u.detach())).sum(dim=(1, 2, 3)))


def test_linear_binary_weights_are_plus_minus_scale():
    cfg = compose_train(["quantizer=bc", "task=bw", "quantizer.scale=channel"])
    layer = layer_factory(cfg.quantizer, cfg.task)("fc", nn.Linear(6, 3)).eval()
    w = layer.effective_weight()
    s = layer.weight.detach().abs().mean(dim=1, keepdim=True)
    torch.testing.assert_close(w.abs(), s.expand_as(w))
    assert torch.equal(torch.sign(w), torch.where(layer.weight >= 0, 1.0, -1.0))


def test_binary_inputs_are_standardized_per_sample_first():
    """activation_normalize=sample_standardize (RBNN): sign((a − mean a)/std a), statistics per sample."""
    layer = quantized_copy(nn.Linear(5, 2, bias=False), weight_quantizer=BNN(), act_quantizer=BNN(),
                           activation_normalize="sample_standardize").eval()
    x = torch.tensor([[0.5, 0.6, 0.7, 0.8, 0.9], [-3.0, -2.0, -2.5, 1.0, -1.0]])
    with torch.no_grad():
        want = F.linear(sgn(x - x.mean(dim=1, keepdim=True)), sgn(layer.weight))
        torch.testing.assert_close(layer(x), want)


def test_learned_scale_starts_at_the_copied_weights():
    fp = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        fp.weight.copy_(torch.arange(54.0).view(3, 2, 3, 3) / 54 - 0.4)
    layer = quantized_copy(fp, weight_quantizer=BNN(), scale="channel_learnable")
    assert isinstance(layer.learned_scale, nn.Parameter) and layer.learned_scale.requires_grad
    torch.testing.assert_close(layer.learned_scale.detach(), fp.weight.abs().mean(dim=(1, 2, 3)))
    assert "learned_scale" in layer.state_dict()


@pytest.mark.parametrize("key,value,valid", [("scale", "tensor", "none, layer, channel, channel_pow2"),
                                             ("normalize", "mean", "none, layer_mean_abs, channel_mean_abs"),
                                             ("activation_normalize", "layer", "none, sample_standardize")])
def test_bad_choice_names_the_value_and_the_valid_ones(key, value, valid):
    cfg = compose_train(["quantizer=bnn", "task=bw", f"quantizer.{key}={value}"])
    with pytest.raises(UserError, match=rf"quantizer=bnn: quantizer.{key}='{value}' is not a valid choice.*{valid}"):
        layer_factory(cfg.quantizer, cfg.task)("fc", nn.Linear(6, 3))
