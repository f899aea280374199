"""PC++ Figure 3 at tiny scale: sensitivity of each block (and each component of a block) to
binarization. From a full-precision tiny ViT, binarize one block's component (qkv, proj, fc1,
fc2) or the whole block at a time, and record the accuracy drop against FP.

    python scripts/vit_figure3.py [--depth 4] [--mode bat|ptb] [--epochs 2] [--fp-epochs 30]

mode bat: BNN++ BW fine-tuning for --epochs with only that part binarized (task.blocks=[b]
task.components=[c]); mode ptb: the FP weights binarized there with no training. Writes
results/figures/vit_figure3.{png,csv} (drop = FP accuracy - binarized accuracy, in points).
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

COMPONENTS = ["qkv", "proj", "fc1", "fc2", "all"]
BASE = ["dataset=digits", "model=vit_tiny", "optimizer=adamw", "dataset.batch_size=64"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--mode", choices=("bat", "ptb"), default="bat")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fp-epochs", type=int, default=30)
    parser.add_argument("--root", type=Path, default=ROOT / "outputs" / "vit_experiments")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figures" / "vit_figure3")
    args = parser.parse_args()
    model = [*BASE, f"model.net.depth={args.depth}"]
    fp = run(args.root, f"fp_vit_tiny_depth{args.depth}_e{args.fp_epochs}",
             [*model, "quantizer=fp", "optimizer.lr=0.003", f"trainer.max_epochs={args.fp_epochs}"])
    from_fp = ["pipeline=ft", f"pipeline.checkpoint={Path(fp['run_dir']) / 'checkpoints' / 'best.pt'}"]
    if args.mode == "bat":
        method = ["quantizer=bnnpp", "optimizer.lr=0.002", f"trainer.max_epochs={args.epochs}"]
    else:
        method = ["quantizer=ptb", "trainer.max_epochs=0", "model.protocol.normalization=false"]
    drops = []
    for block in range(args.depth):
        row = []
        for comp in COMPONENTS:
            name = f"f3_{args.mode}_d{args.depth}_b{block}_{comp}" + (f"_e{args.epochs}" if args.mode == "bat" else "")
            components = "null" if comp == "all" else f"[{comp}]"
            results = run(args.root, name, [*model, *method, "task=bw", *from_fp,
                                            f"task.blocks=[{block}]", f"task.components={components}"])
            row.append(fp["final_test_acc"] - results["final_test_acc"])
        drops.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["block", *COMPONENTS])
        writer.writerows([b, *(round(d, 2) for d in row)] for b, row in enumerate(drops))
    fig, ax = plt.subplots(figsize=(4.2, 0.5 * args.depth + 1.4), dpi=100)
    image = ax.imshow(drops, cmap="coolwarm", aspect="auto")
    for b, row in enumerate(drops):
        for c, d in enumerate(row):
            ax.text(c, b, f"{d:.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(COMPONENTS)), COMPONENTS, fontsize=8)
    ax.set_yticks(range(args.depth), [f"block {b}" for b in range(args.depth)], fontsize=8)
    ax.set_title(f"accuracy drop (points), {args.mode.upper()}, FP {fp['final_test_acc']:.1f}%", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"))
    print(drops)


if __name__ == "__main__":
    main()
