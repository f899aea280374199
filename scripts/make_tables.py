"""Render a paper table (or figure) from the runs of its sweep, next to the published numbers.

    python scripts/make_tables.py pcpp/table2 [--scale paper|mini|smoke]
        [--source runs | runs:<folder> | wandb:<entity>/<project>] [--output-root outputs]
        [--out DIR] [--figures DIR]
    python scripts/make_tables.py all --scale smoke

Writes results/tables/<paper>/<table>.md|.tex|.csv and, for figures,
results/figures/<paper>_<table>.png, in the paper's layout and names; at the mini and smoke scales
<output root>/tables/<paper>/<table>.<scale>.* and <output root>/figures/ instead, outside the
tracked results/ (``--out``/``--figures`` choose other folders). Each
cell reads the runs its plan names by identity (the ``run_id`` of their config), whichever table
launched them: ``runs`` reads <output root>/sweeps/runs, ``runs:<folder>`` searches a folder at any
depth, ``wandb:`` asks wandb for those run ids. Exit code 0 when every cell is filled, 1 when cells
are missing, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core.errors import UserError  # noqa: E402
from src.reporting import tables  # noqa: E402
from src.sweeps import spec, spec_files, store  # noqa: E402


def render(table: str, scale: str, source: str, output_root: Path, out: Path, figures: Path,
           api=None, log=print, extra: list[str] | tuple[str, ...] = ()) -> tables.Table:
    """Render ``table`` from the runs of its plan (``extra``: the overrides its runs were given)."""
    plan = spec.plan(table, scale, output_root, strict=False, extra=extra)   # cells and their runs' identities
    records = store.load(source, plan, api=api)
    result = tables.build(plan, records)
    paths = tables.write(result, out)
    if plan.kind == "figure":
        paths["png"] = tables.plot(result, figures)
    log(tables.to_markdown(result))
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", help=f"<paper>/<table> or 'all'; one of: {', '.join(spec_files.list_specs())}")
    p.add_argument("--scale", default="paper", choices=spec_files.scales())
    p.add_argument("--source", default="runs", help="runs | runs:<folder> | wandb:<entity>/<project>")
    p.add_argument("--output-root", type=Path, default=None, help="where the runs are ($PROXBIN_OUTPUT or outputs)")
    p.add_argument("--out", type=Path, default=None,
                   help="tables folder (default: results/tables at scale=paper, <output root>/tables otherwise)")
    p.add_argument("--figures", type=Path, default=None,
                   help="figures folder (default: results/figures at scale=paper, <output root>/figures otherwise)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import os

    output_root = args.output_root or Path(os.environ.get("PROXBIN_OUTPUT", "outputs"))
    default_out, default_figures = tables.output_dirs(args.scale, output_root)
    out, figures = args.out or default_out, args.figures or default_figures
    names = spec_files.list_specs() if args.table == "all" else [args.table]
    missing = 0
    try:
        for name in names:
            missing += render(name, args.scale, args.source, output_root, out, figures).missing
    except UserError as exc:
        print(f"make_tables: error: {exc}", file=sys.stderr)
        return 2
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
