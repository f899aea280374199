"""Quantized Conv2d/Linear layers, the replacements model surgery puts in place of nn.Conv2d/Linear.

In training a layer computes with F(w) (and F(x) on its input under BWA), gradients flowing back
multiplied by B (PC++ eq. 7). In evaluation it computes with its truly binary form — sign(w),
times the optional scale, and sign(x) under BWA — unless ``evaluation_form == 'soft'``, the
training-time forward kept as a diagnostic. Under BWAA the accumulation of ±1 × ±1 products goes
through the task's accumulator (cyclic in training, exact wrap in evaluation) before scale and bias.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from src.accum import accumulate_conv2d, accumulate_linear

SCALES = ("none", "layer", "channel")


class QuantizedLayerMixin:
    """What a quantized Conv2d and Linear share: the quantizers, the scale, the forms."""

    evaluation_form = "binary"

    def __init__(self, *args: Any, weight_quantizer: nn.Module, act_quantizer: nn.Module | None = None,
                 accumulator: nn.Module | None = None, scale: str = "none", **kwargs: Any):
        super().__init__(*args, **kwargs)  # nn.Conv2d / nn.Linear with their own arguments
        self._setup(weight_quantizer, act_quantizer, accumulator, scale)

    def _setup(self, weight_quantizer: nn.Module, act_quantizer: nn.Module | None, accumulator: nn.Module | None,
               scale: str) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale {scale!r} is not one of {SCALES}")
        if accumulator is not None and act_quantizer is None:
            raise ValueError("an accumulator needs binary activations (task=bwaa binarizes both)")
        if accumulator is not None:
            accumulator.set_fan_in(self.weight[0].numel())
        self.weight_quantizer = weight_quantizer
        self.act_quantizer = act_quantizer
        self.accumulator = accumulator
        self.scale = scale

    @property
    def binary_form(self) -> bool:
        return not self.training and self.evaluation_form == "binary"

    def weight_scale(self) -> torch.Tensor | None:
        """s = mean|w| of the latent weights, per layer or per output channel (XNOR-Net style),
        treated as a constant (no gradient)."""
        if self.scale == "none":
            return None
        w = self.weight.detach().abs()
        if self.scale == "layer":
            return w.mean()
        return w.mean(dim=tuple(range(1, w.dim())))

    def quantized_weight(self) -> torch.Tensor:
        """F(w/s) in training (B(w/s)/s backward), sign(w) in the binary form; the layer multiplies
        by s afterwards. Normalising by s puts the latent weights on the scale where F's schedule
        (μ, ρ, t) is meaningful, whatever their initial magnitude."""
        return self._unit_weight(self.weight_scale())

    def _unit_weight(self, s: torch.Tensor | None) -> torch.Tensor:
        w = self.weight
        if s is not None:
            w = w / _per_output(s, w.dim())
        if self.binary_form:
            return self.weight_quantizer.binarize(w)
        return self.weight_quantizer(w)  # F forward, B backward; in soft evaluation just F

    def effective_weight(self) -> torch.Tensor:
        """The weights the layer computes with when nothing follows the accumulation: s·F(w/s)
        (±s in the binary form). Folding s into the weights is exact, conv(x, w)·s = conv(x, s·w)
        per output channel, and costs a weight-sized product instead of an activation-sized one."""
        s = self.weight_scale()
        w = self._unit_weight(s)
        return w if s is None else w * _per_output(s, w.dim())

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quantizer is None:
            return x
        if self.binary_form:
            return self.act_quantizer.binarize(x)
        return self.act_quantizer(x)

    def finish(self, acc: torch.Tensor, s: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
        """BWAA: integer accumulation → accumulator (cyclic in training, exact wrap in binary
        evaluation) → × scale s → + bias. The wrap is not linear, so here s must follow it."""
        acc = self.accumulator(acc)
        shape = [1] * acc.dim()
        shape[channel_dim] = -1
        if s is not None:
            acc = acc * (s.view(shape) if s.dim() else s).to(acc.dtype)  # the binary weights are ±s
        if self.bias is not None:
            acc = acc + self.bias.view(shape).to(acc.dtype)
        return acc


def _per_output(s: torch.Tensor, dim: int) -> torch.Tensor:
    """A per-layer (0-d) or per-output-channel scale shaped to broadcast over a weight tensor."""
    return s.view([-1] + [1] * (dim - 1)) if s.dim() else s


class QuantizedConv2d(QuantizedLayerMixin, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Under BWAA the accumulation is computed in fp32 with autocast off, so its integers are exact.
        x = self.quantized_input(x)
        if self.accumulator is None:
            return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)
        s = self.weight_scale()
        acc = accumulate_conv2d(x, self._unit_weight(s), self.stride, self.padding, self.dilation, self.groups)
        return self.finish(acc, s, channel_dim=1)


class QuantizedLinear(QuantizedLayerMixin, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quantized_input(x)
        if self.accumulator is None:
            return F.linear(x, self.effective_weight(), self.bias)
        s = self.weight_scale()
        return self.finish(accumulate_linear(x, self._unit_weight(s)), s, channel_dim=-1)


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
    return new


def latent_weights(model: nn.Module) -> list[nn.Parameter]:
    """The latent (continuous) weights of every quantized layer: what update rules act on."""
    return [m.weight for m in model.modules() if isinstance(m, QuantizedLayerMixin)]
