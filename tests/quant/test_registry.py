"""The pair registry: a class joins it by its decorator, build_quantizer builds it by name with its
parameters, and a name cannot be taken twice."""

from __future__ import annotations

import pytest
import torch

from src.quant import ForwardBackwardQuantizer, build_quantizer, register_pair, registered_pairs
from src.quant import registry
from src.quant.quantizers import BNNPlusPlus, Identity


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test (pairs registered here do not leak)."""
    monkeypatch.setattr(registry, "_PAIRS", dict(registry._PAIRS))


def test_the_decorator_registers_a_new_pair_under_its_name(scratch_registry):
    @register_pair("halfsign")
    class HalfSign(ForwardBackwardQuantizer):
        def __init__(self, height: float = 0.5):
            super().__init__()
            self.height = height

        def forward_map(self, w):
            return self.height * torch.sign(w)

        def backward_map(self, w):
            return torch.ones_like(w)

    assert registered_pairs()["halfsign"] is HalfSign
    q = build_quantizer("halfsign", height=2.0)
    assert type(q) is HalfSign
    torch.testing.assert_close(q(torch.tensor([-3.0, 0.5])), torch.tensor([-2.0, 2.0]))


def test_a_taken_name_is_refused_naming_the_holder(scratch_registry):
    with pytest.raises(ValueError, match="pair name 'bnnpp' is taken by BNNPlusPlus"):
        register_pair("bnnpp")(type("Other", (ForwardBackwardQuantizer,), {}))
    assert registered_pairs()["bnnpp"] is BNNPlusPlus


def test_build_passes_parameters_and_the_registry_is_read_only_from_outside():
    q = build_quantizer("bnnpp", mu_start=2.0, mu_end=60.0)
    q.set_progress(1.0)
    assert q.mu == 60.0
    registered_pairs()["identity"] = BNNPlusPlus  # a copy: changes nothing
    assert registered_pairs()["identity"] is Identity
