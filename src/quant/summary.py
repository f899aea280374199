"""Model summary in the manner of larq's ``models.summary``: per layer, binary and full-precision
parameter counts and memory with 1-bit packing of the binary weights; totals and the compression
ratio against the same model stored entirely in fp32."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn as nn

from src.quant.layers import QuantizedLayerMixin

FP_BITS = 32


@dataclass
class LayerRow:
    name: str
    kind: str
    binary_params: int
    fp_params: int

    @property
    def packed_bytes(self) -> float:
        return self.binary_params / 8 + self.fp_params * FP_BITS / 8


def model_summary(model: nn.Module) -> dict:
    """Rows for every module that owns parameters, plus totals. Binary = the latent weight of a
    quantized layer (stored as 1 bit once binarized); everything else (biases, scales, BN/LN,
    full-precision layers, learnable shifts) counts at 32 bits."""
    rows = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        binary = module.weight.numel() if isinstance(module, QuantizedLayerMixin) else 0
        total = sum(p.numel() for _, p in own)
        rows.append(LayerRow(name or "(root)", type(module).__name__, binary, total - binary))
    binary = sum(r.binary_params for r in rows)
    fp = sum(r.fp_params for r in rows)
    fp32_bytes = (binary + fp) * FP_BITS / 8
    packed = sum(r.packed_bytes for r in rows)
    return {
        "layers": [asdict(r) | {"packed_bytes": r.packed_bytes} for r in rows],
        "binary_params": binary, "fp_params": fp, "params": binary + fp,
        "fp32_bytes": fp32_bytes, "packed_bytes": packed,
        "compression": fp32_bytes / packed if packed else 1.0,
    }


def format_summary(summary: dict) -> str:
    lines = [f"{'layer':<40}{'type':<18}{'binary':>12}{'fp32':>12}{'memory':>12}"]
    for r in summary["layers"]:
        lines.append(f"{r['name'][:39]:<40}{r['kind'][:17]:<18}{r['binary_params']:>12,}{r['fp_params']:>12,}"
                     f"{_size(r['packed_bytes']):>12}")
    lines.append(f"{'total':<58}{summary['binary_params']:>12,}{summary['fp_params']:>12,}{_size(summary['packed_bytes']):>12}")
    lines.append(f"fp32 model {_size(summary['fp32_bytes'])} -> binarized, 1-bit packed {_size(summary['packed_bytes'])} "
                 f"(compression {summary['compression']:.2f}x)")
    return "\n".join(lines)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{n_bytes:.0f} B"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"
