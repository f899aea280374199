"""overflow_rate and overflow_penalty on hand-made tensors."""

import pytest
import torch

from src.accum import overflow_penalty, overflow_rate


def test_overflow_rate_hand_made():
    # bits=4: representable range [-8, 7]
    x = torch.tensor([-9.0, -8.0, 0.0, 7.0, 8.0, 20.0])
    assert overflow_rate(x, 4).item() == pytest.approx(0.5)
    assert overflow_rate(x.to(torch.int64), 4).item() == pytest.approx(0.5)
    assert overflow_rate(torch.tensor([[127.0, -128.0], [128.0, -129.0]]), 8).item() == pytest.approx(0.5)
    assert overflow_rate(torch.arange(-128, 128.0), 8).item() == 0.0
    assert overflow_rate(torch.tensor([1e6, -1e6]), 16).item() == 1.0
    assert overflow_rate(torch.tensor([7.4, 7.6]), 4).item() == pytest.approx(0.5)  # nearest integer


def test_overflow_penalty_hand_made():
    # bits=4, M=8: normalized excess [0.5, 0, 0, 0.25, 0]
    x = torch.tensor([-12.0, 0.0, 8.0, 10.0, -8.0])
    assert overflow_penalty(x, 4).item() == pytest.approx((0.25 + 0.0625) / 5)
    assert overflow_penalty(x, 4, reduction="sum").item() == pytest.approx(0.3125)
    assert overflow_penalty(x, 4, power=1).item() == pytest.approx(0.75 / 5)
    assert overflow_penalty(x, 4, power=3, reduction="sum").item() == pytest.approx(0.125 + 0.25 ** 3)
    none = overflow_penalty(x.reshape(5, 1), 4, reduction="none")
    assert none.shape == (5, 1)
    torch.testing.assert_close(none.flatten(), torch.tensor([0.25, 0, 0, 0.0625, 0]))
    assert overflow_penalty(torch.arange(-128, 129.0), 8).item() == 0.0
    assert overflow_penalty(torch.tensor([200], dtype=torch.int64), 8).item() == pytest.approx((72 / 128) ** 2)


def test_overflow_penalty_gradient_zero_inside_nonzero_outside():
    x = torch.tensor([-12.0, -8.0, -3.0, 0.0, 5.0, 8.0, 10.0], requires_grad=True)
    overflow_penalty(x, 4, reduction="sum").backward()
    # d/dx ((|x| − 8)/8)^2 = 2 (|x| − 8) sign(x) / 64 outside
    torch.testing.assert_close(x.grad, torch.tensor([-2 * 4 / 64, 0, 0, 0, 0, 0, 2 * 2 / 64]))


def test_overflow_penalty_half_precision_input_is_float32():
    x = torch.tensor([300.0, 0.0], dtype=torch.bfloat16)
    value = overflow_penalty(x, 8)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx((172 / 128) ** 2 / 2)


@pytest.mark.parametrize("kwargs", [{"power": 0.5}, {"power": 0}, {"reduction": "max"}, {"power": True}])
def test_overflow_penalty_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        overflow_penalty(torch.zeros(2), 8, **kwargs)
