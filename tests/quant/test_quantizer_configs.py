"""configs/quantizer/<method>.yaml is the one list of methods: every weight/activation node builds a
registered pair (a config combines registered pieces, so a config-only variant needs no code), its
keys are constructor arguments, and a method named after a pair uses that pair, with the pair's (papers')
defaults, for its weights or its activations (Bi-Real's and ReActNet's weights take the BNN pair, their
activations the pair of their name)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.core import config_tree
from src.engine.build import LAYER_KEYS, in_context
from src.quant import build_quantizer, registered_pairs

W = torch.linspace(-2, 2, 401, dtype=torch.float64)


def method_config(method: str, task: str = "bw"):
    return in_context(OmegaConf.load(config_tree.option_file("quantizer", method)), task)


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
def test_a_method_named_after_a_pair_uses_it_with_the_pairs_defaults(method):
    cfg = method_config(method)
    nodes = [instantiate(node) for node in (cfg.weight, cfg.activation)]
    named = [q for q in nodes if type(q) is registered_pairs()[method]]
    assert named, f"{method}: neither its weight nor its activation pair is the pair {method!r}"
    reference = build_quantizer(method)
    for p in (0.0, 0.5, 1.0):
        for q in (*named, reference):
            q.set_progress(p)
        for q in named:
            torch.testing.assert_close(q.forward_map(W), reference.forward_map(W))
            torch.testing.assert_close(q.backward_map(W), reference.backward_map(W))


@pytest.mark.parametrize("method", config_tree.methods())
def test_every_method_states_every_layer_key(method):
    """scale, scale_in_backward, normalize and activation_normalize are written out in every method's
    config (what each method does is read there, not inferred from defaults)."""
    cfg = method_config(method)
    assert set(LAYER_KEYS) <= set(cfg), sorted(set(LAYER_KEYS) - set(cfg))
