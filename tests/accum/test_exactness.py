"""wrapped_conv2d / wrapped_linear equal, element by element, b-bit integer registers that
accumulate the ±1 products one at a time (tests/accum/reference.py, independent of wrap)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from src.accum import (WrapAccumulator, accumulate_conv2d, accumulate_linear, binary_accumulate,
                       wrapped_conv2d, wrapped_linear)

from .reference import conv2d_reference, conv2d_unwrapped, linear_reference, signs

# bits, images, in_ch, H, W, out_ch, kernel, stride, padding, dilation, groups, P(+1)
CONV_CASES = [
    (4, 2, 3, 6, 6, 4, 3, 1, 1, 1, 1, 0.9),
    (5, 1, 6, 7, 7, 3, 3, 2, 1, 1, 1, 0.85),
    (6, 2, 8, 5, 7, 4, 3, 1, 0, 1, 2, 0.95),
    (4, 1, 4, 5, 5, 4, 3, 1, 1, 1, 4, 0.95),
    (7, 1, 8, 7, 7, 2, 3, 1, 2, 2, 1, 0.98),
    (8, 1, 16, 5, 5, 3, 3, 1, 1, 1, 1, 0.98),
    (8, 1, 6, 6, 6, 2, 5, 1, 0, 1, 1, 0.99),
    (8, 2, 6, 7, 7, 3, 3, 3, 2, 1, 3, 0.5),
    (10, 1, 6, 7, 7, 2, 3, 1, 1, 1, 1, 0.5),
    (12, 1, 256, 3, 3, 2, 3, 1, 0, 1, 1, 0.995),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"b{c[0]}-c{c[2]}-k{c[6]}-s{c[7]}-p{c[8]}-d{c[9]}-g{c[10]}")
def test_wrapped_conv2d_equals_register_reference(case):
    bits, n, c, h, w_, o, k, stride, padding, dilation, groups, p = case
    rng = np.random.default_rng(sum(case[:11]))
    x = signs(rng, (n, c, h, w_), p)
    w = signs(rng, (o, c // groups, k, k), p)
    w[::2] *= -1  # half the filters overflow downwards
    ref = conv2d_reference(x, w, bits, stride, padding, dilation, groups)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = wrapped_conv2d(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32), bits, **kwargs)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    via = binary_accumulate(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                            "conv2d", bits, **kwargs)
    assert torch.equal(via, out)
    if p > 0.8:  # the case is meant to overflow: the register really wrapped somewhere
        assert (ref != conv2d_unwrapped(x, w, **kwargs)).any()


# bits, rows, fan-in, outputs, P(+1)
LINEAR_CASES = [
    (4, 3, 40, 5, 0.9),
    (8, 2, 300, 4, 0.9),
    (8, 3, 64, 3, 0.5),
    (9, 2, 600, 3, 0.95),
    (11, 2, 100, 3, 0.5),
    (13, 1, 5000, 2, 0.99),
    (16, 1, 40000, 2, 0.995),
]


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: f"b{c[0]}-k{c[2]}")
def test_wrapped_linear_equals_register_reference(case):
    bits, n, k, o, p = case
    rng = np.random.default_rng(sum(case[:4]))
    x = signs(rng, (n, k), p)
    w = signs(rng, (o, k), p)
    w[::2] *= -1
    ref = linear_reference(x, w, bits)
    out = wrapped_linear(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32), bits)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    assert torch.equal(binary_accumulate(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                                         "linear", bits), out)
    if p > 0.8:
        assert (ref != x @ w.T).any()


def test_linear_under_bf16_autocast_matches_int8_register():
    rng = np.random.default_rng(0)
    x = signs(rng, (2, 1000), 0.97)
    w = signs(rng, (4, 1000), 0.97)
    w[::2] *= -1
    ref = linear_reference(x, w, 8)
    xt = torch.tensor(x, dtype=torch.bfloat16)
    wt = torch.tensor(w, dtype=torch.float32)
    accumulator = WrapAccumulator(bits=8).eval()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        naive = F.linear(xt, wt)
        acc = accumulate_linear(xt, wt)
        out = accumulator(acc)
        direct = wrapped_linear(xt, wt, 8)
    assert naive.dtype == torch.bfloat16
    assert not torch.equal(naive.float(), torch.tensor(x @ w.T, dtype=torch.float32))  # bf16 is not exact
    assert acc.dtype == out.dtype == direct.dtype == torch.float32
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), x @ w.T)
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    np.testing.assert_array_equal(direct.numpy().astype(np.int64), ref)


def test_linear_under_fp16_autocast_matches_int8_register():
    """trainer.precision=fp16: sums above 2048 are not float16 numbers (their spacing is 2 and more), so
    a float16 accumulation is inexact; the accumulation stays float32 with autocast off, and exact."""
    rng = np.random.default_rng(2)
    x = signs(rng, (2, 5000), 0.97)
    w = signs(rng, (4, 5000), 0.97)
    w[::2] *= -1
    ref = linear_reference(x, w, 8)
    xt, wt = torch.tensor(x, dtype=torch.float16), torch.tensor(w, dtype=torch.float32)
    accumulator = WrapAccumulator(bits=8).eval()
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        naive = F.linear(xt, wt)
        acc = accumulate_linear(xt, wt)
        out = accumulator(acc)
    assert naive.dtype == torch.float16
    assert not torch.equal(naive.float(), torch.tensor(x @ w.T, dtype=torch.float32))  # fp16 is not exact
    assert acc.dtype == out.dtype == torch.float32
    np.testing.assert_array_equal(acc.numpy().astype(np.int64), x @ w.T)
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)


def test_conv_under_fp16_autocast_matches_int8_register():
    rng = np.random.default_rng(3)
    x = signs(rng, (1, 321, 4, 4), 0.98)  # 321·9 terms: odd sums above 2048, between float16 numbers
    w = signs(rng, (2, 321, 3, 3), 0.98)
    w[1] *= -1
    ref = conv2d_reference(x, w, 8, padding=1)
    xt, wt = torch.tensor(x, dtype=torch.float16), torch.tensor(w, dtype=torch.float16)
    accumulator = WrapAccumulator(bits=8).eval()
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        naive = F.conv2d(xt, wt, padding=1)
        out = accumulator(accumulate_conv2d(xt, wt, padding=1))
        direct = wrapped_conv2d(xt, wt, 8, padding=1)
    assert naive.dtype == torch.float16
    assert not torch.equal(naive.float(), torch.tensor(conv2d_unwrapped(x, w, padding=1), dtype=torch.float32))
    assert out.dtype == direct.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    np.testing.assert_array_equal(direct.numpy().astype(np.int64), ref)


def test_conv_under_bf16_autocast_matches_int8_register():
    rng = np.random.default_rng(1)
    x = signs(rng, (1, 32, 4, 4), 0.98)
    w = signs(rng, (2, 32, 3, 3), 0.98)
    w[1] *= -1
    ref = conv2d_reference(x, w, 8, padding=1)
    xt, wt = torch.tensor(x, dtype=torch.bfloat16), torch.tensor(w, dtype=torch.bfloat16)
    accumulator = WrapAccumulator(bits=8).eval()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = accumulator(accumulate_conv2d(xt, wt, padding=1))
        direct = wrapped_conv2d(xt, wt, 8, padding=1)
    assert out.dtype == direct.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy().astype(np.int64), ref)
    np.testing.assert_array_equal(direct.numpy().astype(np.int64), ref)
    assert (ref != conv2d_unwrapped(x, w, padding=1)).any()


def test_accumulations_are_differentiable():
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    accumulate_conv2d(x, w, padding=1).sum().backward()
    assert x.grad is not None and w.grad is not None
    xl = torch.randn(2, 7, dtype=torch.bfloat16, requires_grad=True)
    accumulate_linear(xl, torch.randn(3, 7)).sum().backward()
    assert xl.grad.dtype == torch.bfloat16


def test_fan_in_at_2_pow_24_is_refused():
    x = torch.empty(1, 2 ** 24, 1, 1, device="meta")
    with pytest.raises(ValueError, match="2\\^24"):
        wrapped_conv2d(x, torch.empty(1, 2 ** 24, 1, 1, device="meta"), 8)
    with pytest.raises(ValueError, match="2\\^24"):
        wrapped_linear(torch.empty(1, 2 ** 24, device="meta"), torch.empty(3, 2 ** 24, device="meta"), 8)


def test_binary_accumulate_bad_op():
    with pytest.raises(ValueError, match="op"):
        binary_accumulate(torch.ones(1, 3), torch.ones(2, 3), "conv1d", 8)
    with pytest.raises(TypeError):
        binary_accumulate(torch.ones(1, 3), torch.ones(2, 3), "linear", 8, stride=2)


def test_reference_registers_agree_with_each_other():
    """The numpy int8/int16 registers and the masked register wrap identically."""
    from .reference import MaskedRegister, NumpyRegister, _run
    rng = np.random.default_rng(7)
    for bits, dtype in ((8, np.int8), (16, np.int16)):
        terms = rng.choice([-1, 1], size=3 * 2 ** bits, p=[0.1, 0.9]).tolist()
        a, b = NumpyRegister(dtype), MaskedRegister(bits)

        def run(reg):
            acc, seen = reg.zero(), []
            for t in terms:
                acc = reg.add(acc, t)
                seen.append(int(acc))
            return seen
        assert _run(lambda: run(a)) == run(b)
        assert run(b)[-1] == ((sum(terms) + 2 ** (bits - 1)) % 2 ** bits) - 2 ** (bits - 1)
