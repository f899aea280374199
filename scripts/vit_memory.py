"""Memory of the full-size binarized ViT-B/16 and DeiT-T (PC++ §4.3, "≈30×"): fp32 size and the
1-bit-packed size of the BNN++ BW model with the PC++ protocols, no training, random weights
(pretrained=False: sizes do not depend on the values). Writes results/vit_memory.md.

    python scripts/vit_memory.py [model ...]      # default: vit_b16 deit_t
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.engine.build import build_layer_factory  # noqa: E402
from src.models.protocols import apply_protocols  # noqa: E402
from src.quant.summary import model_summary  # noqa: E402
from src.quant.surgery import quantize_model  # noqa: E402

MiB = 2 ** 20


def summarize(model_name: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={model_name}", "dataset=imagenet", "quantizer=bnnpp",
                                                      "task=bw"])
    model = instantiate(cfg.model.net)
    fp32 = model_summary(model)
    protocol = apply_protocols(model, cfg, binarizing=True)
    replaced = quantize_model(model, build_layer_factory(protocol.quantizer, cfg.task), list(cfg.task.keep_fp),
                              only=protocol.only)
    s = model_summary(model)
    kept = sorted({r["name"] for r in s["layers"] if r["binary_params"] == 0 and r["fp_params"]})
    return {"model": model_name, "arch": cfg.model.net.arch, "params": fp32["params"],
            "fp32_mib": fp32["fp32_bytes"] / MiB, "binary_params": s["binary_params"], "fp_params": s["fp_params"],
            "packed_mib": s["packed_bytes"] / MiB, "compression": fp32["fp32_bytes"] / s["packed_bytes"],
            "binarized_layers": len(replaced), "added_layernorm_params": sum(
                r["fp_params"] for r in s["layers"] if r["name"].endswith("post_norm")), "kept": kept}


def main(models: list[str]) -> None:
    rows = [summarize(m) for m in models]
    lines = ["| model | timm arch | params | fp32 | binary params | fp params | 1-bit packed | compression |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['arch']} | {r['params']:,} | {r['fp32_mib']:.1f} MiB | "
                     f"{r['binary_params']:,} | {r['fp_params']:,} | {r['packed_mib']:.1f} MiB | {r['compression']:.1f}x |")
    notes = [f"- {r['model']}: {r['binarized_layers']} binarized Linear layers (qkv, proj, fc1, fc2 of every block); "
             f"full precision: patch embedding, class/position tokens, every LayerNorm (incl. "
             f"{r['added_layernorm_params']:,} parameters of the protocol's extra LayerNorms), all biases, the "
             f"classifier head (1000 classes)." for r in rows]
    text = "\n".join(["# Binarized vision transformers: memory (BNN++, BW, PC++ protocols)", "",
                      "Measured by `python scripts/vit_memory.py` (model summary of src/quant/summary.py; "
                      "binary weights at 1 bit, everything else at 32 bits; the one fp32 scale s = mean|w| per "
                      "binarized layer of protocol (1) is not a parameter and is not counted: 4 bytes a layer). "
                      "compression = fp32 size of the original model / packed size.",
                      "", *lines, "", *notes, ""])
    out = ROOT / "results" / "vit_memory.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:] or ["vit_b16", "deit_t"])
