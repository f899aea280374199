"""PC++ Figure 2 at tiny scale: full precision (FP) vs BNN++ (binarization-aware fine-tuning) vs
PTB (the FP model binarized with no further optimization), for small ViTs on the digits data.

    python scripts/vit_figure2.py [--epochs 5] [--fp-epochs 30]

For each model: an FP run; BNN++ BW fine-tuned from it with the PC++ protocols (scaling,
normalization, KD); PTB = quantizer=ptb, trainer.max_epochs=0 on the FP weights (evaluation of
sign(w)·mean|w| in every block Linear). Writes results/figures/vit_figure2.{png,csv}.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.sweeps.in_process import run  # noqa: E402

# label -> extra overrides of the tiny ViT (stand-ins for the paper's ViT-B, DeiT-T/S/B)
MODELS = {"ViT-tiny (2 blocks)": [], "ViT-tiny (4 blocks)": ["model.net.depth=4"]}
BASE = ["dataset=digits", "model=vit_tiny", "optimizer=adamw", "dataset.batch_size=64"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--fp-epochs", type=int, default=30)
    parser.add_argument("--root", type=Path, default=ROOT / "outputs" / "vit_experiments")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figures" / "vit_figure2")
    args = parser.parse_args()
    rows = []
    for label, extra in MODELS.items():
        tag = "vit_tiny" + "".join("_" + o.split("=")[0].split(".")[-1] + o.split("=")[1] for o in extra)
        fp = run(args.root, f"fp_{tag}_e{args.fp_epochs}", [*BASE, *extra, "quantizer=fp", "optimizer.lr=0.003",
                                                            f"trainer.max_epochs={args.fp_epochs}"])
        from_fp = ["pipeline=ft", f"pipeline.checkpoint={Path(fp['run_dir']) / 'checkpoints' / 'best.pt'}"]
        bat = run(args.root, f"f2_bnnpp_{tag}_e{args.epochs}", [
            *BASE, *extra, "quantizer=bnnpp", "task=bw", *from_fp, "optimizer.lr=0.002",
            f"trainer.max_epochs={args.epochs}", "model.protocol.kd=true"])
        ptb = run(args.root, f"f2_ptb_{tag}", [*BASE, *extra, "quantizer=ptb", "task=bw", *from_fp,
                                               "trainer.max_epochs=0", "model.protocol.normalization=false"])
        rows.append({"model": label, "FP": fp["final_test_acc"], "BNN++": bat["final_test_acc"],
                     "PTB": ptb["final_test_acc"]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    width = 0.26
    for i, method in enumerate(("FP", "BNN++", "PTB")):
        xs = [j + (i - 1) * width for j in range(len(rows))]
        bars = ax.bar(xs, [r[method] for r in rows], width, label=method)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(rows)), [r["model"] for r in rows], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("FP vs BNN++ vs PTB (digits, BW, fine-tuning)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"))
    print(rows)


if __name__ == "__main__":
    main()
