"""Compare your own runs: mean ± std (n) of metrics per group of config values, from a sweep
directory, run directories or a wandb project.

    python scripts/compare.py outputs/multirun/<sweep> [more dirs ...] [--wandb <entity>/<project>]
        [--by quantizer.name,optimizer.lr] [--metric final_test_acc,best_test_acc]
        [--markdown table.md] [--csv table.csv] [--curves curves.png [--curve-metric test_acc]]

Groups by the ``--by`` config keys (dotted paths into each run's resolved config, as results.json
stores it; default: every key whose value differs between the runs, except the seed and the keys that
do not change what is trained). Metrics are numeric entries of results.json (default final_test_acc,
the binary network's test accuracy after the last epoch; also best_test_acc, final_test_acc_soft,
train_loss, train_acc, wall_time_s, train_img_per_s, ...). Prints the table as Markdown; ``--curves``
plots a summary.csv column per epoch (mean ± std band per group). Runs that did not complete are
listed and left out. Exit code 0; 1 when no run completed; 2 on bad input (unknown key or metric, no
run directory, wandb unreachable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core.errors import UserError  # noqa: E402
from src.core.io import atomic_write_text  # noqa: E402
from src.reporting import compare, run_results  # noqa: E402


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [k.strip() for k in text.split(",") if k.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="example: python scripts/compare.py outputs/multirun/<sweep> --by optimizer.lr "
                                       "--curves lr.png")
    p.add_argument("paths", nargs="*", type=Path, help="sweep directories, folders of runs, or run directories")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the runs of this wandb project (wandb.Api)")
    p.add_argument("--by", help="comma-separated config keys to group by "
                                "(default: the keys that differ, seed excepted)")
    p.add_argument("--metric", default=compare.DEFAULT_METRIC, help="comma-separated results.json entries "
                                                                      f"(default {compare.DEFAULT_METRIC})")
    p.add_argument("--markdown", type=Path, help="also write the Markdown table to this file")
    p.add_argument("--csv", type=Path, help="write the table as CSV (mean, std, n per metric; full precision)")
    p.add_argument("--curves", type=Path, help="write a PNG of the per-epoch curves (mean ± std per group)")
    p.add_argument("--curve-metric", default=compare.DEFAULT_CURVE,
                   help=f"the summary.csv column the curves show (default {compare.DEFAULT_CURVE})")
    p.add_argument("--decimals", type=int, default=2, help="decimals of the means in the Markdown table")
    return p


def main(argv: list[str] | None = None, api=None) -> int:
    """``api``: a wandb.Api stand-in (tests)."""
    args = parser().parse_args(argv)
    try:
        if not args.paths and not args.wandb:
            raise UserError("nothing to compare: give a sweep directory (outputs/multirun/<sweep>), run directories, "
                            "or --wandb <entity>/<project>")
        runs = run_results.from_run_dirs(args.paths) if args.paths else []
        if args.wandb:
            runs += run_results.from_wandb(args.wandb, api=api)
        result = compare.compare(runs, _names(args.by), _names(args.metric))
        if not result.groups:
            print(compare.to_markdown(result), end="")
            print(f"compare: none of the {len(runs)} runs completed: nothing to compare", file=sys.stderr)
            return 1
        table = compare.to_markdown(result, args.decimals)
        print(table, end="")
        written = []
        if args.markdown:
            written.append(atomic_write_text(args.markdown, table))
        if args.csv:
            written.append(atomic_write_text(args.csv, compare.to_csv(result)))
        if args.curves:
            written.append(compare.plot_curves(result, args.curve_metric, args.curves))
    except UserError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    if written:
        print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
