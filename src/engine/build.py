"""From the quantizer and task configs to the objects the engine hands to src.quant: the layer
factory of model surgery, the update rule, and a method's weight pair. The only place where
quantizer configs are instantiated (Hydra stays out of src.quant)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.core import config_tree
from src.core.errors import UserError
from src.quant import build_quantizer, latent_weights, quantized_copy
from src.quant.updates import NullUpdate


def layer_factory(quantizer: Any, task: Any):
    """make_layer(name, layer) for :func:`src.quant.surgery.quantize_model` from the configs:
    each layer gets its own quantizer objects (ReAct's learnable shifts are per layer)."""
    binarize_activations = bool(task.get("binarize_activations", False))
    if binarize_activations and quantizer.get("activation") is None:
        raise UserError(
            f"task={task.name} binarizes activations but quantizer={quantizer.name} has no activation pair "
            f"(quantizer.activation is null); use task=bw, or a quantizer whose config sets `activation:`"
        )
    accum_cfg = task.get("accum")
    scale = quantizer.get("scale", "none")

    def make_layer(name: str, layer: nn.Module) -> nn.Module:
        act = instantiate(quantizer.activation) if binarize_activations else None
        if act is not None and hasattr(act, "bind_channels"):  # per-channel parameters (ReAct's shift)
            conv = isinstance(layer, nn.Conv2d)
            act.bind_channels(layer.in_channels if conv else layer.in_features, 1 if conv else -1)
        return quantized_copy(
            layer,
            weight_quantizer=instantiate(quantizer.weight),
            act_quantizer=act,
            accumulator=instantiate(accum_cfg) if accum_cfg is not None else None,
            scale=scale,
        )

    return make_layer


def build_layer_factory(quantizer: DictConfig, task: DictConfig):
    """The quantizer's layer factory for model surgery; None for `fp` (weight: null)."""
    if quantizer.get("weight") is None:
        return None
    return layer_factory(quantizer, task)


def build_update_rule(quantizer: DictConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    """The method's update rule (src.quant.updates) over the latent weights; NullUpdate for `fp`."""
    if quantizer.get("update_rule") is None:
        return NullUpdate()
    return instantiate(quantizer.update_rule)(latent_weights(model), optimizer)


def method_pair(method: str) -> nn.Module:
    """The training-time weight pair of the method ``configs/quantizer/<method>.yaml`` (its ``weight:``
    node). Full precision (``weight: null``) trains w itself: the identity pair F(w) = w, B = 1."""
    if method not in config_tree.methods():
        raise UserError(f"unknown method {method!r} (no configs/quantizer/{method}.yaml); valid methods: "
                        f"{', '.join(config_tree.methods())}")
    return pair_of(OmegaConf.load(config_tree.option_file("quantizer", method)))


def pair_of(quantizer: DictConfig) -> nn.Module:
    """The weight pair of a quantizer config (identity when it has none)."""
    weight = quantizer.get("weight")
    return build_quantizer("identity") if weight is None else instantiate(weight)
