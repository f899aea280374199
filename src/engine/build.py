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
from src.quant import build_quantizer, quantized_copy, quantized_layers
from src.quant.updates import NullUpdate


LAYER_KEYS = {"scale": "none", "scale_in_backward": True, "normalize": "none", "activation_normalize": "none"}


def layer_factory(quantizer: Any, task: Any):
    """make_layer(name, layer) for :func:`src.quant.surgery.quantize_model` from the configs: the
    keys of :data:`LAYER_KEYS` go 1:1 to the quantized layer's constructor (absent keys take the
    constructor's defaults), and each layer gets its own pair objects (per-channel parameters such as
    ReAct's learnable shifts are per layer)."""
    binarize_activations = bool(task.get("binarize_activations", False))
    if binarize_activations and quantizer.get("activation") is None:
        raise UserError(
            f"task={task.name} binarizes activations but quantizer={quantizer.name} has no activation pair "
            f"(quantizer.activation is null); use task=bw, or a quantizer whose config sets `activation:`"
        )
    accum_cfg = task.get("accum")
    layer_args = {key: quantizer.get(key, default) for key, default in LAYER_KEYS.items()}

    def make_layer(name: str, layer: nn.Module) -> nn.Module:
        conv = isinstance(layer, nn.Conv2d)
        weight = instantiate(quantizer.weight)
        if hasattr(weight, "bind_channels"):  # a shift per output channel (PC++ App. F reading of ReAct)
            weight.bind_channels(layer.out_channels if conv else layer.out_features, 0)
        act = instantiate(quantizer.activation) if binarize_activations else None
        if act is not None and hasattr(act, "bind_channels"):  # a shift per input channel (ReAct's RSign)
            act.bind_channels(layer.in_channels if conv else layer.in_features, 1 if conv else -1)
        try:
            return quantized_copy(layer, weight_quantizer=weight, act_quantizer=act,
                                  accumulator=instantiate(accum_cfg) if accum_cfg is not None else None, **layer_args)
        except ValueError as exc:
            raise UserError(f"quantizer={quantizer.name}: {exc}") from exc

    return make_layer


def build_layer_factory(quantizer: DictConfig, task: DictConfig):
    """The quantizer's layer factory for model surgery; None for `fp` (weight: null)."""
    if quantizer.get("weight") is None:
        return None
    return layer_factory(quantizer, task)


def build_update_rule(quantizer: DictConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    """The method's update rule (src.quant.updates) over the latent weights, acting in each layer's
    own coordinates u = N(w) (its ``normalize``); NullUpdate for `fp`."""
    if quantizer.get("update_rule") is None:
        return NullUpdate()
    layers = quantized_layers(model)
    return instantiate(quantizer.update_rule)([m.weight for m in layers], optimizer,
                                              units=[m.normalize for m in layers])


def method_pair(method: str, task: str = "bw", role: str = "weight") -> nn.Module:
    """The training-time pair (``role``: its ``weight:`` or ``activation:`` node) of the method
    ``configs/quantizer/<method>.yaml``, interpolations resolved for ``task``. Full precision
    (``weight: null``) trains w itself: the identity pair F(w) = w, B = 1."""
    if method not in config_tree.methods():
        raise UserError(f"unknown method {method!r} (no configs/quantizer/{method}.yaml); valid methods: "
                        f"{', '.join(config_tree.methods())}")
    return pair_of(OmegaConf.load(config_tree.option_file("quantizer", method)), task, role)


def in_context(quantizer: DictConfig, task: str = "bw") -> DictConfig:
    """A quantizer config read from its file alone, placed where its interpolations point
    (``${quantizer.*}``, ``${task.*}``, e.g. EDE's T_min per task) with ``configs/task/<task>.yaml``."""
    if task not in config_tree.tasks():
        raise UserError(f"unknown task {task!r}; valid tasks: {', '.join(config_tree.tasks())}")
    root = OmegaConf.create({"quantizer": quantizer, "task": OmegaConf.load(config_tree.option_file("task", task))})
    return root.quantizer


def pair_of(quantizer: DictConfig, task: str = "bw", role: str = "weight") -> nn.Module:
    """The ``role`` pair (weight or activation) of a quantizer config (identity when it has none)."""
    if role not in ("weight", "activation"):
        raise ValueError(f"role {role!r} is not one of weight, activation")
    node = in_context(quantizer, task).get(role)
    return build_quantizer("identity") if node is None else instantiate(node)
