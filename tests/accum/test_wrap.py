"""wrap(x, b) against pure Python integer arithmetic."""

import numpy as np
import pytest
import torch

from src.accum import check_bits, wrap


def python_wrap(v: int, b: int) -> int:
    return ((v + 2 ** (b - 1)) % 2 ** b) - 2 ** (b - 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int32])
@pytest.mark.parametrize("bits", range(2, 17))
def test_wrap_matches_python_integers(bits, dtype):
    rng = np.random.default_rng(bits)
    values = rng.integers(-2 ** 20, 2 ** 20 + 1, size=2000).tolist()
    values += [0, 1, -1, 2 ** (bits - 1), -2 ** (bits - 1), 2 ** (bits - 1) - 1, -2 ** (bits - 1) - 1,
               2 ** bits, -2 ** bits, 2 ** 20, -2 ** 20]
    out = wrap(torch.tensor(values, dtype=dtype), bits)
    assert out.dtype == dtype
    assert out.tolist() == [python_wrap(v, bits) for v in values]


@pytest.mark.parametrize("bits", [8, 12, 20, 24, 25, 31])
def test_wrap_float32_exact_up_to_2_pow_24(bits):
    values = [2 ** 24, -2 ** 24, 2 ** 24 - 1, -(2 ** 24 - 1), 2 ** 24 - 3, 12345677, -9876543]
    x = torch.tensor(values, dtype=torch.float32)
    assert x.tolist() == values  # representable
    assert wrap(x, bits).tolist() == [python_wrap(v, bits) for v in values]


@pytest.mark.parametrize("bits", [17, 30, 40, 62])
def test_wrap_wide_registers_int64(bits):
    rng = np.random.default_rng(bits)
    values = [int(v) for v in rng.integers(-2 ** 45, 2 ** 45, size=500)]
    assert wrap(torch.tensor(values), bits).tolist() == [python_wrap(v, bits) for v in values]


def test_wrap_range_dtype_and_idempotence():
    x = torch.arange(-1000, 1000, dtype=torch.float32)
    for bits in (2, 3, 8):
        y = wrap(x, bits)
        m = 2 ** (bits - 1)
        assert y.min().item() == -m and y.max().item() == m - 1
        assert torch.equal(wrap(y, bits), y)
        assert torch.equal((y - x) % 2 ** bits, torch.zeros_like(x))  # congruent mod 2^b
    small = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    assert torch.equal(wrap(small, 8), small) and wrap(small, 8).dtype == torch.int8
    assert wrap(small, 4).tolist() == [0, -1, 0, -1]
    assert wrap(torch.tensor([200.0], dtype=torch.bfloat16), 8).dtype == torch.bfloat16


def test_wrap_rounds_near_integers():
    # e.g. Winograd/FFT conv algorithms leave ±1e-4 noise on integer results
    x = torch.tensor([127.0001, 127.9999, -128.0002, 3.4999])
    assert wrap(x, 8).tolist() == [127, -128, -128, 3]


def test_wrap_straight_through_gradient():
    x = torch.tensor([5.0, 130.0, -300.0], requires_grad=True)
    y = wrap(x, 8)
    assert y.tolist() == [5, -126, -44]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("bad", [1, 0, -3, 63])
def test_bad_bits_value(bad):
    with pytest.raises(ValueError, match="bits"):
        wrap(torch.zeros(2), bad)


@pytest.mark.parametrize("bad", [2.5, 8.0, "8", None, True])
def test_bad_bits_type(bad):
    with pytest.raises(TypeError, match="bits"):
        wrap(torch.zeros(2), bad)


def test_bits_accepts_numpy_integers():
    assert check_bits(np.int64(8)) == 8


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool, torch.complex64])
def test_wrap_rejects_unsigned_and_complex(dtype):
    with pytest.raises(TypeError):
        wrap(torch.zeros(2, dtype=dtype), 8)
