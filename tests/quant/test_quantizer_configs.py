"""configs/quantizer/<method>.yaml is the one list of methods: every weight/activation node builds a
registered pair (a config combines registered pieces, so a config-only variant needs no code), its
keys are constructor arguments, and a method named after its own pair keeps the pair's (papers')
defaults."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.core import config_tree
from src.quant import build_quantizer, registered_pairs

W = torch.linspace(-2, 2, 401, dtype=torch.float64)


def method_config(method: str):
    return OmegaConf.load(config_tree.option_file("quantizer", method))


def test_fp_config_does_no_surgery():
    cfg = method_config("fp")
    assert cfg.name == "fp" and cfg.weight is None and cfg.activation is None


@pytest.mark.parametrize("method", config_tree.methods())
def test_every_pair_node_builds_a_registered_pair(method):
    cfg = method_config(method)
    assert cfg.name == method  # the run name and the tables use it
    if cfg.get("weight") is None:  # full precision: nothing to binarize, weights or activations
        assert cfg.get("activation") is None
        return
    pair_classes = set(registered_pairs().values())
    weight = instantiate(cfg.weight)
    assert type(weight) in pair_classes, f"{method}: weight pair {type(weight).__name__} is not registered"
    if cfg.get("activation") is not None:
        act = instantiate(cfg.activation)
        assert type(act) in pair_classes, f"{method}: activation pair {type(act).__name__} is not registered"
        assert act(W).shape == W.shape and set(act.binarize(W).unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("method", sorted(set(config_tree.methods()) & set(registered_pairs())))
def test_a_method_named_after_its_pair_keeps_the_pairs_defaults(method):
    weight = instantiate(method_config(method).weight)
    assert type(weight) is registered_pairs()[method]
    reference = build_quantizer(method)
    for p in (0.0, 0.5, 1.0):
        weight.set_progress(p)
        reference.set_progress(p)
        torch.testing.assert_close(weight.forward_map(W), reference.forward_map(W))
        torch.testing.assert_close(weight.backward_map(W), reference.backward_map(W))
