"""BWAA layers: in binary evaluation a QuantizedConv2d / QuantizedLinear built by the layer factory
from `task=bwaa` binarizes its real-valued latent weights and inputs and returns, element by element,
what a b-bit integer register accumulating the ±1 products one by one returns (numpy int8/int16
wrap-around or a masked register: tests/accum/reference.py, which knows nothing of src.accum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import compose_train
from src.accum import WrapAccumulator
from src.engine.build import layer_factory
from src.quant.layers import QuantizedConv2d, QuantizedLinear

from accum.reference import conv2d_reference, linear_reference

# bits, images, in_ch, H, W, out_ch, kernel, stride, padding
CONV_CASES = [(4, 2, 3, 6, 6, 4, 3, 1, 1), (6, 1, 16, 7, 7, 3, 3, 2, 1), (8, 2, 32, 5, 5, 4, 3, 1, 1),
              (8, 1, 64, 4, 4, 2, 1, 1, 0), (10, 1, 200, 3, 3, 2, 3, 1, 0), (16, 1, 512, 3, 3, 2, 3, 1, 1)]
LINEAR_CASES = [(4, 3, 40, 5), (8, 2, 300, 4), (12, 2, 3000, 3), (16, 1, 40000, 2)]


def biased_latent(rng: np.random.Generator, shape, p_plus: float) -> np.ndarray:
    """Real-valued latent tensors whose signs are +1 with probability p_plus (to force overflow)."""
    magnitude = rng.uniform(0.05, 2.0, size=shape)
    return np.where(rng.random(shape) < p_plus, magnitude, -magnitude)


def bwaa_factory(bits: int):
    cfg = compose_train(["quantizer=bnnpp", "task=bwaa", f"task.accum.bits={bits}", "quantizer.scale=none"])
    return layer_factory(cfg.quantizer, cfg.task)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"b{c[0]}-c{c[2]}-k{c[6]}-s{c[7]}-p{c[8]}")
def test_conv_layer_evaluation_equals_integer_register(case):
    bits, n, c, h, w_, o, k, stride, padding = case
    rng = np.random.default_rng(sum(case))
    x = biased_latent(rng, (n, c, h, w_), 0.9)
    weight = biased_latent(rng, (o, c, k, k), 0.9)
    weight[::2] *= -1
    layer = bwaa_factory(bits)("conv", nn.Conv2d(c, o, k, stride, padding, bias=False))
    assert isinstance(layer, QuantizedConv2d) and isinstance(layer.accumulator, WrapAccumulator)
    assert layer.accumulator.bits == bits
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    layer.eval()
    with torch.no_grad():
        out = layer(torch.tensor(x, dtype=torch.float32))
    ref = conv2d_reference(np.sign(x).astype(np.int64), np.sign(weight).astype(np.int64), bits, stride, padding)
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    assert (np.abs(ref) <= 2 ** (bits - 1)).all()


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: f"b{c[0]}-k{c[2]}")
def test_linear_layer_evaluation_equals_integer_register(case):
    bits, n, k, o = case
    rng = np.random.default_rng(sum(case))
    x = biased_latent(rng, (n, k), 0.97)
    weight = biased_latent(rng, (o, k), 0.97)
    weight[::2] *= -1
    layer = bwaa_factory(bits)("fc", nn.Linear(k, o, bias=False))
    assert isinstance(layer, QuantizedLinear)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    layer.eval()
    with torch.no_grad():
        out = layer(torch.tensor(x, dtype=torch.float32))
    ref = linear_reference(np.sign(x).astype(np.int64), np.sign(weight).astype(np.int64), bits)
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    assert (ref != np.sign(x) @ np.sign(weight).T).any()  # the register really wrapped


def test_bf16_autocast_evaluation_still_equals_int8_register():
    rng = np.random.default_rng(7)
    x = biased_latent(rng, (2, 48, 5, 5), 0.95)
    weight = biased_latent(rng, (4, 48, 3, 3), 0.95)
    weight[1::2] *= -1
    layer = bwaa_factory(8)("conv", nn.Conv2d(48, 4, 3, padding=1, bias=False)).eval()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = layer(torch.tensor(x, dtype=torch.bfloat16))
        naive = nn.functional.conv2d(torch.tensor(np.sign(x), dtype=torch.bfloat16),
                                     torch.tensor(np.sign(weight), dtype=torch.bfloat16), padding=1)
    ref = conv2d_reference(np.sign(x).astype(np.int64), np.sign(weight).astype(np.int64), 8, padding=1)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    assert naive.dtype == torch.bfloat16  # without the fp32 accumulation, autocast would compute in bf16


def test_scale_and_bias_follow_the_wrap():
    """Scale and bias come after the register: out = s·wrap(Σ x w) + b, per output channel."""
    rng = np.random.default_rng(3)
    x = biased_latent(rng, (1, 40), 0.95)
    weight = biased_latent(rng, (3, 40), 0.95)
    cfg = compose_train(["quantizer=bnnpp", "task=bwaa", "task.accum.bits=4", "quantizer.scale=channel"])
    layer = layer_factory(cfg.quantizer, cfg.task)("fc", nn.Linear(40, 3)).eval()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
        out = layer(torch.tensor(x, dtype=torch.float32))
    wrapped = linear_reference(np.sign(x).astype(np.int64), np.sign(weight).astype(np.int64), 4)
    s = np.abs(weight).mean(axis=1)
    np.testing.assert_allclose(out.numpy(), wrapped * s + np.array([0.5, -1.0, 2.0]), rtol=1e-6)


def test_training_forward_is_cyclic_and_differentiable():
    layer = bwaa_factory(8)("fc", nn.Linear(300, 2, bias=False))
    x = torch.randn(4, 300, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    assert torch.isfinite(layer.weight.grad).all() and layer.accumulator.auxiliary_loss() is not None
