"""Quantized Conv2d/Linear (BW, BWA): the output is conv(x_q, F(w/s))·s + b with s = mean|w| per
layer or per output channel; the layer folds s into the weights, which must change nothing, in the
forward pass or in the gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import compose_train
from src.engine.build import layer_factory
from src.quant.quantizers import sign_swish


def scale_of(w: torch.Tensor, scale: str):
    if scale == "none":
        return torch.ones(())
    if scale == "layer":
        return w.detach().abs().mean()
    return w.detach().abs().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("scale", ["none", "layer", "channel"])
@pytest.mark.parametrize("task", ["bw", "bwa"])
def test_conv_equals_explicit_formula_in_training_and_binary_evaluation(scale, task):
    torch.manual_seed(0)
    cfg = compose_train(["quantizer=bnnpp", f"task={task}", f"quantizer.scale={scale}"])
    layer = layer_factory(cfg.quantizer, cfg.task)("conv", nn.Conv2d(4, 3, 3, padding=1, bias=True)).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    mu = 5.0  # BNN++ at progress 0

    def explicit(w, b, binary):
        s = scale_of(w, scale)
        per = s.view(-1, 1, 1, 1) if s.dim() else s
        unit = torch.where(w / per >= 0, 1.0, -1.0).to(w) if binary else sign_swish(w / per, mu)
        xq = x if task == "bw" else (torch.where(x >= 0, 1.0, -1.0).to(x) if binary else sign_swish(x, mu))
        out = F.conv2d(xq, unit, None, padding=1)
        return out * (s.view(1, -1, 1, 1) if s.dim() else s) + b.view(1, -1, 1, 1)

    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), explicit(layer.weight, layer.bias, binary=True))
    layer.train()
    layer(x).square().sum().backward()
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    explicit(w, b, binary=False).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, w.grad)  # SS' = ∇SS: B equals autograd of F here
    torch.testing.assert_close(layer.bias.grad, b.grad)


def test_linear_binary_weights_are_plus_minus_scale():
    cfg = compose_train(["quantizer=bc", "task=bw", "quantizer.scale=channel"])
    layer = layer_factory(cfg.quantizer, cfg.task)("fc", nn.Linear(6, 3)).eval()
    w = layer.effective_weight()
    s = layer.weight.detach().abs().mean(dim=1, keepdim=True)
    torch.testing.assert_close(w.abs(), s.expand_as(w))
    assert torch.equal(torch.sign(w), torch.where(layer.weight >= 0, 1.0, -1.0))
