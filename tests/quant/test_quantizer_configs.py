"""configs/quantizer/<name>.yaml: every weight/activation node instantiates, its keys are constructor
arguments, and the weight pair is the registry's method with the registry's (papers') defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.quant.quantizers import QUANTIZERS, build_quantizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "quantizer"
W = torch.linspace(-2, 2, 401, dtype=torch.float64)


def test_one_config_per_registered_method():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(QUANTIZERS)


def test_fp_config_does_no_surgery():
    cfg = OmegaConf.load(CONFIGS / "fp.yaml")
    assert cfg.name == "fp" and cfg.weight is None and cfg.activation is None


@pytest.mark.parametrize("name", sorted(set(QUANTIZERS) - {"fp"}))
def test_config_builds_the_registered_pair_with_its_defaults(name):
    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    weight = instantiate(cfg.weight)
    assert type(weight) is QUANTIZERS[name]
    reference = build_quantizer(name)
    for p in (0.0, 0.5, 1.0):
        weight.set_progress(p)
        reference.set_progress(p)
        torch.testing.assert_close(weight.forward_map(W), reference.forward_map(W))
        torch.testing.assert_close(weight.backward_map(W), reference.backward_map(W))
    if cfg.get("activation") is not None:
        act = instantiate(cfg.activation)
        assert act(W).shape == W.shape and set(act.binarize(W).unique().tolist()) == {-1.0, 1.0}
