"""Plot the accumulator bit-width study (experiment=accum_bits): binary test accuracy and mean
overflow rate of the b-bit accumulators against b, from the runs' results.json files.

    python scripts/plot_accum_bits.py outputs/multirun/accum_bits [--out results/figures/accum_bits.png]

Writes the PNG and, beside it, a CSV and a Markdown table (bits, status, test accuracy, best
accuracy, mean and max per-layer overflow rate, run directory). Runs that diverged or failed are
listed with their status and drawn as crosses at the bottom of the accuracy panel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core.io import atomic_write, atomic_write_csv, atomic_write_text  # noqa: E402

COLUMNS = ("bits", "status", "test_acc", "best_test_acc", "overflow_rate_mean", "overflow_rate_max", "run_dir")


def collect(sweep_dir: Path) -> list[dict]:
    """One row per run under ``sweep_dir`` whose results.json is a BWAA run, sorted by bits."""
    rows = []
    for path in sorted(sweep_dir.rglob("results.json")):
        results = json.loads(path.read_text())
        accum = (results.get("config") or {}).get("task", {}).get("accum")
        if not accum:
            continue
        rates = list((results.get("overflow_rates") or {}).values())
        rows.append({
            "bits": int(accum["bits"]), "status": results["status"],
            "test_acc": results.get("final_test_acc"), "best_test_acc": results.get("best_test_acc"),
            "overflow_rate_mean": sum(rates) / len(rates) if rates else None,
            "overflow_rate_max": max(rates) if rates else None, "run_dir": str(path.parent),
        })
    if not rows:
        raise SystemExit(f"plot_accum_bits: no BWAA results.json under '{sweep_dir}'; run the sweep first: "
                         f"python src/train.py -m experiment=accum_bits pipeline.checkpoint=<fp best.pt>")
    return sorted(rows, key=lambda r: (r["bits"], r["run_dir"]))


def markdown(rows: list[dict]) -> str:
    def cell(v):
        return "—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| bits | status | test acc (%) | best (%) | overflow rate, mean | max |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['bits']} | {r['status']} | {cell(r['test_acc'])} | {cell(r['best_test_acc'])} | "
                     f"{cell(r['overflow_rate_mean'])} | {cell(r['overflow_rate_max'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> None:
    ok = [r for r in rows if r["status"] == "completed"]
    bad = [r for r in rows if r["status"] != "completed"]
    fig, (ax_acc, ax_ovf) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_acc.plot([r["bits"] for r in ok], [r["test_acc"] for r in ok], "o-", label="completed")
    if bad:
        ax_acc.plot([r["bits"] for r in bad], [0.0] * len(bad), "rx", markersize=9, label="diverged / failed")
    ax_acc.set(xlabel="accumulator bits b", ylabel="binary test accuracy (%)", title="BWAA accuracy")
    ax_acc.legend(fontsize=8)
    with_rate = [r for r in rows if r["overflow_rate_mean"] is not None]
    ax_ovf.plot([r["bits"] for r in with_rate], [r["overflow_rate_mean"] for r in with_rate], "o-", label="mean over layers")
    ax_ovf.plot([r["bits"] for r in with_rate], [r["overflow_rate_max"] for r in with_rate], "s--", label="worst layer")
    ax_ovf.set(xlabel="accumulator bits b", ylabel="share of accumulations outside the b-bit range",
               title="overflow rate (test)")
    ax_ovf.legend(fontsize=8)
    for ax in (ax_acc, ax_ovf):
        ax.set_xticks(sorted({r["bits"] for r in rows}))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".") or "png", dpi=120))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (or any folder above the runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figures" / "accum_bits.png")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        raise SystemExit(f"plot_accum_bits: '{args.sweep_dir}' is not a directory")
    rows = collect(args.sweep_dir)
    plot(rows, args.out)
    atomic_write_csv(args.out.with_suffix(".csv"), [{k: r[k] for k in COLUMNS} for r in rows])
    atomic_write_text(args.out.with_suffix(".md"), markdown(rows))
    print(markdown(rows) + f"\nwrote {args.out} (+ .csv, .md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
