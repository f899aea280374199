"""Quantized Conv2d/Linear layers, the replacements model surgery puts in place of nn.Conv2d/Linear.

A layer separates three things (plan of issue 11, §0; each a constructor argument = a config key):
- ``normalize``: the argument of F and B, u = N(w) (src.quant.normalize);
- ``scale``: what multiplies the pair's output, Ŵ = s ⊙ F(u) (binary weights ±s):
    none               s = 1                                         (BinaryNet, ProxQuant)
    layer / channel    s = mean|w| of the latent weights per layer / output channel, detached
                       (Bi-Real, ReActNet: channel; PC++ §4.3 protocol (1): layer)
    channel_pow2       s_c = 2^round(log2 mean|u_c|), detached         (IR-Net ir_1w1a.py)
    channel_learnable  s_c a trained parameter, initialised to mean|w_c| (RBNN's α)
- ``scale_in_backward``: true, ∂Ŵ/∂F(u) = s (IR-Net, RBNN, PC++); false, s only in the forward pass
  (Bi-Real/ReActNet's s·sign(W).detach() − clip(W).detach() + clip(W)).
Hence ∂ℓ/∂w = (∂u/∂w)ᵀ [B(u) ⊙ s̃ ⊙ ∂ℓ/∂Ŵ], s̃ = s or 1 (PC++ eq. 7 at u).

Inputs (BWA) are binarized by the activation pair at a' = N(a) (``activation_normalize``). In
evaluation a layer computes with its truly binary form s ⊙ sign(u) (and sign(a')) unless
``evaluation_form == 'soft'``, the training-time forward kept as a diagnostic. Under BWAA the
accumulation of ±1 × ±1 products goes through the task's accumulator (cyclic in training, exact wrap
in evaluation) before scale and bias.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from src.accum import accumulate_conv2d, accumulate_linear
from src.quant.normalize import (ACTIVATION_NORMALIZATIONS, WEIGHT_NORMALIZATIONS, check_choice,
                                 normalize_activation, normalize_weight)

SCALES = ("none", "layer", "channel", "channel_pow2", "channel_learnable")


class QuantizedLayerMixin:
    """What a quantized Conv2d and Linear share: the pairs, the normalisations, the scale, the forms."""

    evaluation_form = "binary"

    def __init__(self, *args: Any, weight_quantizer: nn.Module, act_quantizer: nn.Module | None = None,
                 accumulator: nn.Module | None = None, scale: str = "none", scale_in_backward: bool = True,
                 normalize: str = "none", activation_normalize: str = "none", **kwargs: Any):
        super().__init__(*args, **kwargs)  # nn.Conv2d / nn.Linear with their own arguments
        check_choice("scale", scale, SCALES, "what multiplies the binary weights (±s)")
        check_choice("normalize", normalize, WEIGHT_NORMALIZATIONS, "the argument u of F and B")
        check_choice("activation_normalize", activation_normalize, ACTIVATION_NORMALIZATIONS,
                     "the argument of the activation pair")
        if accumulator is not None and act_quantizer is None:
            raise ValueError("an accumulator needs binary activations (task=bwaa binarizes both)")
        if accumulator is not None:
            accumulator.set_fan_in(self.weight[0].numel())
        # an instance attribute from the start: torch.compile guards on where it is found, so one that
        # moved from the class to the instance at the first evaluation_form() would recompile the step
        self.evaluation_form = "binary"
        self.weight_quantizer = weight_quantizer
        self.act_quantizer = act_quantizer
        self.accumulator = accumulator
        self.scale = scale
        self.scale_in_backward = bool(scale_in_backward)
        self.normalize = normalize
        self.activation_normalize = activation_normalize
        self.learned_scale: nn.Parameter | None = None
        if scale == "channel_learnable":
            self.learned_scale = nn.Parameter(torch.empty(self.weight.shape[0], device=self.weight.device,
                                                          dtype=self.weight.dtype))
            self.reset_learned_scale()

    @torch.no_grad()
    def reset_learned_scale(self) -> None:
        """α_c = mean|w_c| of the current latent weights (RBNN's initialisation); call after loading them."""
        if self.learned_scale is not None:
            self.learned_scale.copy_(self.weight.abs().mean(dim=tuple(range(1, self.weight.dim()))))

    @property
    def binary_form(self) -> bool:
        return not self.training and self.evaluation_form == "binary"

    def unit_weight(self) -> torch.Tensor:
        """u = N(w): the argument of the weight pair."""
        return normalize_weight(self.weight, self.normalize)

    def weight_scale(self, u: torch.Tensor | None = None) -> torch.Tensor | None:
        """s, 0-d (per layer) or one value per output channel; None for ``scale: none``. Statistics
        of the latent weights are constants (no gradient); the learned scale is a parameter."""
        if self.scale == "none":
            return None
        if self.scale == "channel_learnable":
            return self.learned_scale
        if self.scale == "channel_pow2":
            u = (self.unit_weight() if u is None else u).detach().abs()
            return torch.pow(2.0, torch.round(torch.log2(u.mean(dim=tuple(range(1, u.dim()))))))
        w = self.weight.detach().abs()
        return w.mean() if self.scale == "layer" else w.mean(dim=tuple(range(1, w.dim())))

    def quantized_weight(self, u: torch.Tensor | None = None) -> torch.Tensor:
        """F(u) in training (B(u) backward), sign(u) in the binary form; the layer multiplies by s."""
        u = self.unit_weight() if u is None else u
        if self.binary_form:
            return self.weight_quantizer.binarize(u)
        return self.weight_quantizer(u)  # F forward, B backward; in soft evaluation just F

    def scaled(self, t: torch.Tensor, s: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
        """t ⊙ s with s broadcast along ``channel_dim``; with ``scale_in_backward: false`` the gradient
        reaching t is not multiplied by s (s·t.detach() + (t − t.detach()) has the value s·t exactly)."""
        if s is None:
            return t
        if s.dim():
            shape = [1] * t.dim()
            shape[channel_dim] = -1
            s = s.view(shape)
        s = s.to(t.dtype)
        if self.scale_in_backward or not torch.is_grad_enabled():
            return t * s
        return s * t.detach() + (t - t.detach())

    def effective_weight(self) -> torch.Tensor:
        """The weights the layer computes with when nothing follows the accumulation: s ⊙ F(u)
        (±s in the binary form). Folding s into the weights is exact, conv(x, w)·s = conv(x, s·w)
        per output channel, and costs a weight-sized product instead of an activation-sized one."""
        u = self.unit_weight()
        return self.scaled(self.quantized_weight(u), self.weight_scale(u), channel_dim=0)

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quantizer is None:
            return x
        x = normalize_activation(x, self.activation_normalize)
        if self.binary_form:
            return self.act_quantizer.binarize(x)
        return self.act_quantizer(x)

    def finish(self, acc: torch.Tensor, s: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
        """BWAA: integer accumulation → accumulator (cyclic in training, exact wrap in binary
        evaluation) → × scale s → + bias. The wrap is not linear, so here s must follow it."""
        acc = self.scaled(self.accumulator(acc), s, channel_dim)
        if self.bias is not None:
            shape = [1] * acc.dim()
            shape[channel_dim] = -1
            acc = acc + self.bias.view(shape).to(acc.dtype)
        return acc


class QuantizedConv2d(QuantizedLayerMixin, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Under BWAA the accumulation is computed in fp32 with autocast off, so its integers are exact.
        x = self.quantized_input(x)
        if self.accumulator is None:
            return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)
        u = self.unit_weight()
        acc = accumulate_conv2d(x, self.quantized_weight(u), self.stride, self.padding, self.dilation, self.groups)
        return self.finish(acc, self.weight_scale(u), channel_dim=1)


class QuantizedLinear(QuantizedLayerMixin, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quantized_input(x)
        if self.accumulator is None:
            return F.linear(x, self.effective_weight(), self.bias)
        u = self.unit_weight()
        return self.finish(accumulate_linear(x, self.quantized_weight(u)), self.weight_scale(u), channel_dim=-1)


def quantized_copy(layer: nn.Module, **quant: Any) -> nn.Module:
    """A quantized layer with the same shape, device and weights as ``layer``."""
    device, dtype = layer.weight.device, layer.weight.dtype
    if isinstance(layer, nn.Conv2d):
        new: nn.Module = QuantizedConv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
            layer.groups, layer.bias is not None, layer.padding_mode, device=device, dtype=dtype, **quant)
    elif isinstance(layer, nn.Linear):
        new = QuantizedLinear(layer.in_features, layer.out_features, layer.bias is not None, device=device,
                              dtype=dtype, **quant)
    else:
        raise TypeError(f"cannot quantize a {type(layer).__name__}")
    new.load_state_dict(layer.state_dict(), strict=False)
    new.reset_learned_scale()
    return new


def quantized_layers(model: nn.Module) -> list[QuantizedLayerMixin]:
    """Every quantized layer of ``model``, in registration order."""
    return [m for m in model.modules() if isinstance(m, QuantizedLayerMixin)]


def latent_weights(model: nn.Module) -> list[nn.Parameter]:
    """The latent (continuous) weights of every quantized layer: what update rules act on."""
    return [m.weight for m in quantized_layers(model)]
