"""Draw the forward quantizer F and the backward quantizer B of every method (configs/quantizer/, the
weight pair of each config, as a function of its argument u = N(w), interpolations resolved for task=bw)
at the schedule points p = 0, 0.5, 1 (PC++ Fig. 5 style), each titled with the Corollary 1 verdict of
src.quant.theory. Writes results/figures/quantizers.png.

    .venv/bin/python scripts/plot_quantizers.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core import config_tree  # noqa: E402
from src.engine.build import method_pair  # noqa: E402
from src.quant.theory import check_quantizer  # noqa: E402

PROGRESS = (0.0, 0.5, 1.0)
METHODS_PER_ROW = 3  # each method takes two panels: F and B


def plot(out: Path) -> Path:
    w = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    names = config_tree.methods()
    rows = -(-len(names) // METHODS_PER_ROW)
    fig, axes = plt.subplots(rows, 2 * METHODS_PER_ROW, figsize=(4 * METHODS_PER_ROW * 2 / 1.6, 2.6 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, name in enumerate(names):
        ax_f, ax_b = axes[i // METHODS_PER_ROW, 2 * (i % METHODS_PER_ROW): 2 * (i % METHODS_PER_ROW) + 2]
        q = method_pair(name)
        verdict = check_quantizer(q, progress=PROGRESS, n=30_001)
        for p in PROGRESS:
            q.set_progress(p)
            ax_f.plot(w, q.forward_map(w), label=f"p={p:g}", lw=1.2)
            ax_b.plot(w, q.backward_map(w), label=f"p={p:g}", lw=1.2)
        tag = "in PC++" if verdict.in_pc_plus_plus else "not in PC++"
        ax_f.set_title(f"{name} weights: F(u) ({tag})", fontsize=9)
        ax_b.set_title(f"{name} weights: B(u)", fontsize=9)
        for ax in (ax_f, ax_b):
            ax.set_visible(True)
            ax.axhline(0, color="0.8", lw=0.5)
            ax.axvline(0, color="0.8", lw=0.5)
            ax.tick_params(labelsize=7)
        ax_b.legend(fontsize=6, loc="upper right")
    fig.suptitle("Forward (F) and backward (B) quantizers at schedule points p = t/T", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the suptitle
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figures" / "quantizers.png")
    print(plot(parser.parse_args().out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
