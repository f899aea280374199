"""Model surgery: which layers are replaced, and that `fp` leaves the network untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from src.models.resnet_cifar import resnet20
from src.quant.surgery import eligible_layers, quantize_model


class Marked(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.inner = layer


def test_fp_factory_is_identity():
    model = resnet20()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert quantize_model(model, None) == []
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_first_and_last_layers_stay_full_precision_by_default():
    model = resnet20()
    names = eligible_layers(model)
    assert names[0] == "conv1" and names[-1] == "fc" and len(names) == 20
    replaced = quantize_model(model, lambda name, layer: Marked(layer))
    assert replaced == names[1:-1]
    assert isinstance(model.conv1, nn.Conv2d) and isinstance(model.fc, nn.Linear)
    assert isinstance(model.layers[0].conv1, Marked)


def test_keep_fp_accepts_names_and_refuses_unknown_ones():
    model = resnet20()
    replaced = quantize_model(model, lambda n, l: Marked(l), keep_fp=["first", "layers.8.conv2"])
    assert "fc" in replaced and "layers.8.conv2" not in replaced and "conv1" not in replaced
    with pytest.raises(ValueError, match="task.keep_fp entry 'head' is neither"):
        quantize_model(resnet20(), lambda n, l: Marked(l), keep_fp=["head"])


def test_keep_fp_patterns_keep_every_matching_layer():
    """ProxQuant's setup (ConQ §5.1): every conv including the first and the fc binarized, the 1x1
    shortcut convs of option B kept in full precision."""
    model = resnet20(shortcut="B")
    shortcuts = [n for n in eligible_layers(model) if ".shortcut." in n]
    assert shortcuts == ["layers.3.shortcut.0", "layers.6.shortcut.0"]
    replaced = quantize_model(model, lambda n, l: Marked(l), keep_fp=["*shortcut*"])
    assert replaced == [n for n in eligible_layers(resnet20(shortcut="B")) if n not in shortcuts]
    assert "conv1" in replaced and "fc" in replaced
    assert all(isinstance(model.get_submodule(n), nn.Conv2d) for n in shortcuts)
    assert quantize_model(resnet20(), lambda n, l: Marked(l), keep_fp=[]) == eligible_layers(resnet20())
    with pytest.raises(ValueError, match=r"task.keep_fp entry '\*shortcut\*' is neither .* pattern"):
        quantize_model(resnet20(), lambda n, l: Marked(l), keep_fp=["*shortcut*"])   # option A: no such conv
