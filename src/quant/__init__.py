"""Binarization in pure PyTorch (no Hydra, no engine): import it alone, as larq's quantizers.

- pairs (F forward, B backward; PC++ eq. 7): :class:`ForwardBackwardQuantizer` subclasses, registered
  with ``@register_pair(name)`` and built with ``build_quantizer(name, **params)``
- proximal maps and schedules: ``src.quant.prox``, ``src.quant.schedules``
- update rules (the third axis of a method): ``LatentUpdate``, ``ProximalUpdate``,
  ``LinearQuantizerProxUpdate``, ``ReverseProxConnect``, ``ProxGenUpdate``
- layers and surgery: ``QuantizedConv2d``, ``QuantizedLinear``, ``quantized_copy``, ``quantize_model``,
  ``quantized_layers``, ``latent_weights``; their choices ``SCALES``, ``WEIGHT_NORMALIZATIONS``,
  ``ACTIVATION_NORMALIZATIONS`` (the argument of F and B: ``src.quant.normalize``)
- the hooks the engine calls: ``set_progress``, ``evaluation_form``, ``auxiliary_loss``, ``accumulator_metrics``
- Corollary 1 check: ``check_quantizer``, ``check_pair``; model summary: ``model_summary``
"""

from src.quant.quantizers import ForwardBackwardQuantizer  # first: registers the pairs
from src.quant.registry import build_quantizer, register_pair, registered_pairs
from src.quant.hooks import accumulator_metrics, auxiliary_loss, evaluation_form, set_progress
from src.quant.layers import SCALES, QuantizedConv2d, QuantizedLinear, latent_weights, quantized_copy, quantized_layers
from src.quant.normalize import ACTIVATION_NORMALIZATIONS, WEIGHT_NORMALIZATIONS
from src.quant.monitor import BinarizationMonitor
from src.quant.summary import format_summary, model_summary
from src.quant.surgery import quantize_model
from src.quant.theory import check_pair, check_quantizer
from src.quant.updates import (LatentUpdate, LinearQuantizerProxUpdate, ProxGenUpdate, ProximalUpdate,
                               ReverseProxConnect)

__all__ = [
    "ACTIVATION_NORMALIZATIONS", "SCALES", "WEIGHT_NORMALIZATIONS", "BinarizationMonitor", "ForwardBackwardQuantizer", "LatentUpdate", "LinearQuantizerProxUpdate", "ProxGenUpdate",
    "ProximalUpdate", "QuantizedConv2d", "QuantizedLinear", "ReverseProxConnect", "accumulator_metrics",
    "auxiliary_loss", "build_quantizer", "check_pair", "check_quantizer", "evaluation_form", "format_summary",
    "latent_weights", "model_summary", "quantize_model", "quantized_copy", "quantized_layers", "register_pair",
    "registered_pairs", "set_progress",
]
