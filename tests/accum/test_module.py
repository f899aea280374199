"""WrapAccumulator: forms, float32 under autocast, statistics, penalty for the loss."""

import copy
import math
import pickle

import pytest
import torch

from src.accum import FLOAT32_EXACT_LIMIT, WrapAccumulator, assert_exact_fan_in, cyclic, overflow_penalty, wrap


def test_hydra_style_arguments_and_defaults():
    cfg = {"bits": 6, "width": 4.0, "penalty_weight": 0.01, "penalty_power": 1}
    m = WrapAccumulator(**cfg)
    assert (m.bits, m.width, m.penalty_weight, m.penalty_power) == (6, 4.0, 0.01, 1)
    d = WrapAccumulator()
    assert d.bits == 8 and d.width == 32.0 and d.penalty_power == 2 and d.evaluation_form == "binary"
    assert "bits=8" in repr(d)


@pytest.mark.parametrize("kwargs", [{"bits": 1}, {"width": 128}, {"width": 0}, {"penalty_weight": -1},
                                    {"penalty_weight": float("nan")}, {"penalty_power": 0.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        WrapAccumulator(**kwargs)


def test_training_uses_cyclic_and_eval_uses_wrap():
    m = WrapAccumulator(bits=8, width=16)
    acc = torch.arange(-400, 400, dtype=torch.float32)
    assert torch.equal(m(acc), cyclic(acc, 8, 16))
    m.eval()
    assert torch.equal(m(acc), wrap(acc, 8))
    m.evaluation_form = "soft"  # the training-time forward, as a diagnostic
    assert torch.equal(m(acc), cyclic(acc, 8, 16))
    m.evaluation_form = "bogus"
    with pytest.raises(ValueError, match="evaluation_form"):
        m(acc)


def test_engine_hooks_contract():
    from src.quant.hooks import auxiliary_loss, evaluation_form
    net = torch.nn.Sequential(WrapAccumulator(bits=4, width=2), WrapAccumulator(bits=4, width=2))
    acc = torch.tensor([-20.0, 3.0, 9.0], requires_grad=True)
    net(acc)
    total = auxiliary_loss(net)
    assert total is not None and total.requires_grad
    assert auxiliary_loss(net) is None  # handed over once
    net.eval()
    with evaluation_form(net, "soft"):
        assert torch.equal(net[0](acc.detach()), cyclic(acc.detach(), 4, 2))
    assert net[0].evaluation_form == "binary"
    net(acc)
    assert auxiliary_loss(net) is None  # no penalty term in evaluation


def test_penalty_and_overflow_rate_recorded():
    m = WrapAccumulator(bits=4, width=2, penalty_weight=0.5)
    acc = torch.tensor([-12.0, 0.0, 8.0, 10.0], requires_grad=True)
    m(acc)
    assert m.last_overflow_rate == pytest.approx(0.75)
    expected = 0.5 * (0.25 + 0.0625) / 4
    assert m.last_penalty.item() == pytest.approx(expected)
    loss = m.auxiliary_loss()
    assert loss is m.last_penalty and m.auxiliary_loss() is None
    loss.backward()
    assert acc.grad[1].item() == 0.0 and acc.grad[2].item() == 0.0
    assert acc.grad[0].item() < 0 < acc.grad[3].item()


def test_stats_average_over_forwards_and_reset():
    m = WrapAccumulator(bits=4, width=2, penalty_weight=1.0)
    assert math.isnan(m.stats()["overflow_rate"])
    assert math.isnan(m.last_overflow_rate)
    m(torch.tensor([-12.0, 0.0, 8.0, 10.0]))  # rate 0.75, penalty 0.078125
    m(torch.tensor([1.0, 2.0]))               # rate 0, penalty 0
    s = m.stats()
    assert s["overflow_rate"] == pytest.approx(0.375)
    assert s["penalty"] == pytest.approx(0.078125 / 2)
    assert m.num_forwards == 2
    m.reset_stats()
    assert math.isnan(m.stats()["penalty"]) and m.num_forwards == 0


def test_float32_under_bf16_autocast():
    m = WrapAccumulator(bits=8).eval()
    acc = torch.tensor([300.0, -129.0, 5.0], dtype=torch.bfloat16)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = m(acc)
        m.train()
        soft = m(acc)
    assert out.dtype == soft.dtype == m.last_penalty.dtype == torch.float32
    assert out.tolist() == [44.0, 127.0, 5.0]


def test_penalty_gradient_flows_to_bf16_input():
    m = WrapAccumulator(bits=8, penalty_weight=1.0)
    acc = torch.tensor([140.0, 300.0, 5.0], dtype=torch.bfloat16, requires_grad=True)
    (m(acc).sum() + m.last_penalty).backward()
    assert acc.grad.dtype == torch.bfloat16
    # 140 wraps to −116 (band, slope −(128 − 32)/32 = −3), 300 to 44 (identity); penalty mean of
    # ((|x| − 128)/128)^2 adds 2 (|x| − 128) / 128^2 / 3
    expected = [-3.0 + 2 * 12 / 128 ** 2 / 3, 1.0 + 2 * 172 / 128 ** 2 / 3, 1.0]
    torch.testing.assert_close(acc.grad.float(), torch.tensor(expected), atol=1e-2, rtol=0)


def test_fan_in_exactness_check():
    assert assert_exact_fan_in(FLOAT32_EXACT_LIMIT - 1) == 2 ** 24 - 1
    with pytest.raises(ValueError, match="2\\^24"):
        assert_exact_fan_in(2 ** 24)
    with pytest.raises(ValueError):
        assert_exact_fan_in(0)
    m = WrapAccumulator()
    m.set_fan_in(4608)
    assert m.fan_in == 4608
    with pytest.raises(ValueError):
        m.set_fan_in(2 ** 25)


def test_deepcopy_and_pickle_after_training_forward():
    m = WrapAccumulator()
    m(torch.randn(10, requires_grad=True) * 200)
    clone = copy.deepcopy(m)
    assert not clone.last_penalty.requires_grad and clone.auxiliary_loss() is None
    restored = pickle.loads(pickle.dumps(m))
    assert restored.stats() == m.stats()
    assert m.auxiliary_loss() is not None  # the original keeps its pending loss term


def test_overflow_penalty_matches_functional():
    m = WrapAccumulator(bits=8, penalty_weight=0.1, penalty_power=3)
    x = torch.randn(50) * 300
    m(x)
    assert m.last_penalty.item() == pytest.approx(0.1 * overflow_penalty(x, 8, power=3).item())
