"""cyclic(x, b, width): continuity, period 2^b, identity near 0, gradients."""

import numpy as np
import pytest
import torch

from src.accum import cyclic

CASES = [(2, 0.5), (3, 1.0), (4, 2.0), (4, 7.5), (8, 32.0), (8, 1.0), (8, 127.0), (12, 100.0)]


def kinks(x, m, w):
    """Distance of x to the nearest kink |u| = M − w (period 2M)."""
    u = np.remainder(x + m, 2 * m) - m
    return np.abs(np.abs(u) - (m - w))


@pytest.mark.parametrize("bits,width", CASES)
def test_continuous_on_dense_grid(bits, width):
    m = 2 ** (bits - 1)
    x = torch.linspace(-3 * 2 ** bits, 3 * 2 ** bits, 200_001, dtype=torch.float64)
    y = cyclic(x, bits, width)
    step = (x[1] - x[0]).item()
    slope = max(1.0, (m - width) / width)
    assert torch.diff(y).abs().max().item() <= slope * step * (1 + 1e-6) + 1e-9
    assert y.abs().max().item() <= m - width + 1e-9


@pytest.mark.parametrize("bits,width", CASES)
def test_period_two_pow_b(bits, width):
    x = torch.empty(5000, dtype=torch.float64).uniform_(-4 * 2 ** bits, 4 * 2 ** bits)
    for k in (1, -1, 3):
        torch.testing.assert_close(cyclic(x + k * 2 ** bits, bits, width), cyclic(x, bits, width),
                                   rtol=0, atol=1e-9)


@pytest.mark.parametrize("bits,width", CASES)
def test_identity_near_zero_and_band_shape(bits, width):
    m = 2 ** (bits - 1)
    x = torch.linspace(-(m - width), m - width, 1001, dtype=torch.float64)
    assert torch.equal(cyclic(x, bits, width), x)
    at = torch.tensor([m, -m, m - width, -(m - width), m - width / 2, -m + width / 2], dtype=torch.float64)
    expected = [0, 0, m - width, -(m - width), (m - width) / 2, -(m - width) / 2]
    torch.testing.assert_close(cyclic(at, bits, width), torch.tensor(expected, dtype=torch.float64))
    # just across the wrap point the value is small and of opposite sign
    eps = 1e-3
    side = cyclic(torch.tensor([m - eps, m + eps], dtype=torch.float64), bits, width)
    assert side[0] > 0 > side[1] and side.abs().max() < 1e-2 * max(1, (m - width) / width)


@pytest.mark.parametrize("bits,width", CASES)
def test_gradient_matches_central_differences(bits, width):
    m = 2 ** (bits - 1)
    rng = np.random.default_rng(bits)
    h = 1e-6 * max(1, m / 64)
    x = rng.uniform(-3 * m, 3 * m, size=4000)
    x = x[kinks(x, m, width) > 10 * h][:500]
    xt = torch.tensor(x, requires_grad=True)
    cyclic(xt, bits, width).sum().backward()
    with torch.no_grad():
        fd = (cyclic(xt + h, bits, width) - cyclic(xt - h, bits, width)) / (2 * h)
    torch.testing.assert_close(xt.grad, fd, rtol=1e-5, atol=1e-5)
    slopes = set(np.round(xt.grad.numpy(), 9).tolist())
    assert slopes <= {1.0, round(-(m - width) / width, 9)}
    assert len(slopes) == 2


def test_gradcheck_away_from_kinks():
    x = torch.tensor([0.3, 100.0, 120.5, 130.0, -140.25, 500.0, -1000.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: cyclic(t, 8, 16.0), (x,))


def test_keeps_dtype():
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        assert cyclic(torch.zeros(3, dtype=dtype), 8, 32).dtype == dtype


@pytest.mark.parametrize("width", [0, -1.0, 128, 200.0])
def test_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        cyclic(torch.zeros(2), 8, width)


def test_rejects_integer_input():
    with pytest.raises(TypeError):
        cyclic(torch.zeros(2, dtype=torch.int64), 8, 32)
