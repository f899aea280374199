"""One command per paper table or figure: launch the missing runs of its sweep, then render it.

    python scripts/reproduce.py <paper>/<table> [scale=paper|mini|smoke] [launcher=local|slurm]
        [--dry-run] [--only key=v1,v2 ...] [--output-root DIR] [--tables DIR] [--figures DIR]
        [--tflops T] [-- extra train overrides, e.g. trainer.device=cuda logger=wandb]

The sweep is declared in configs/sweep/<paper>/<table>.yaml (grid, published budget, seeds)
and scaled by configs/reproduce/scales.yaml. Runs go to <output root>/multirun/<paper>/<table>/
<run name>, the run name being a function of the cell, so a second invocation launches nothing,
interrupted runs resume from their checkpoint, failed or diverged runs are reported (delete the
run directory to retry), a deleted run is run again, and a run another process is training (a
second invocation) is waited for, not run twice. launcher=<name> selects
hydra/launcher=<name> (configs/hydra/launcher/<name>.yaml). --dry-run lists the runs it would
launch with their estimated cost and launches nothing.

Exit code: 0 when every run of the sweep completed, 1 when some did not (listed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core.config_tree import options  # noqa: E402
from src.core.errors import UserError  # noqa: E402
from src.sweeps import launch, smoke_data, spec, spec_files  # noqa: E402
from src.sweeps.cells import CELL_KEYS  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import make_tables  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="key=value arguments: scale=..., launcher=...; anything after -- is "
                                       "passed to every run as a Hydra override")
    p.add_argument("table", help=f"one of: {', '.join(spec_files.list_specs())}")
    p.add_argument("settings", nargs="*",
                   help=f"scale={'|'.join(spec_files.scales())}, launcher={'|'.join(options('hydra/launcher'))}")
    p.add_argument("--dry-run", action="store_true", help="list the runs it would launch, with estimated cost")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="restrict to cells whose key (dataset, model, pipeline, task, method, variant, seed) "
                        "is one of the values; FP runs the kept FT runs start from are kept")
    p.add_argument("--output-root", type=Path, default=None, help="$PROXBIN_OUTPUT or outputs")
    p.add_argument("--tables", type=Path, default=ROOT / "results" / "tables")
    p.add_argument("--figures", type=Path, default=ROOT / "results" / "figures")
    p.add_argument("--tflops", type=float, default=None, help="sustained TFLOP/s assumed by the cost estimate")
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    args.extra = extra
    settings = {"scale": "paper", "launcher": "local"}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or key not in settings:
            raise UserError(f"argument {item!r} is not one of scale=<{'|'.join(spec_files.scales())}>, "
                            f"launcher=<name>; pass training overrides after --")
        settings[key] = value
    args.scale, args.launcher = settings["scale"], settings["launcher"]
    launchers = options("hydra/launcher")
    if args.launcher not in launchers:
        raise UserError(f"launcher={args.launcher!r} is not one of {', '.join(launchers)} "
                        f"(configs/hydra/launcher/<name>.yaml)")
    only = {}
    for item in args.only:
        key, sep, values = item.partition("=")
        if not sep or key not in CELL_KEYS:
            raise UserError(f"--only {item!r}: expected KEY=V1,V2 with KEY one of {', '.join(CELL_KEYS)}")
        only[key] = values.split(",")
    args.only_map = only
    return args


def dry_run(plan: spec.Plan, output_root: Path) -> None:
    states = launch.statuses(plan, output_root)
    todo = [j for j in plan.jobs if states[j.run_name] not in ("completed", *launch.REPORT)]
    print(f"{plan.table} at scale={plan.scale}: {len(plan.jobs)} runs, {len(plan.jobs) - len(todo)} done or "
          f"reported, {len(todo)} to launch")
    print(f"{'stage':>5}  {'run':<64} {'epochs':>6} {'img/epoch':>10} {'GPU-h':>8}  status")
    for j in plan.jobs:
        print(f"{j.stage:>5}  {j.run_name:<64} {j.epochs:>6} {j.train_images:>10} {j.gpu_hours:>8.3f}  "
              f"{states[j.run_name]}" + (f" (from {j.parent})" if j.parent else ""))
    total = sum(j.gpu_hours for j in todo)
    print(f"estimated cost of the runs to launch: {total:.2f} GPU-hours ({total * 3600:.0f} s) "
          f"(a rough estimate: configs/reproduce/cost.yaml, 3 x forward FLOPs per image at a sustained "
          f"throughput, at most max_images_per_s)")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(list(sys.argv[1:] if argv is None else argv))
        output_root = (args.output_root or Path(os.environ.get("PROXBIN_OUTPUT", "outputs"))).resolve()
        plan = spec.plan(args.table, args.scale, output_root, only=args.only_map or None, tflops=args.tflops)
        if args.dry_run:
            dry_run(plan, output_root)
            return 0
        if spec_files.load_scale(args.scale).get("fabricate_data"):
            smoke_data.ensure(output_root / "smoke_data", {j.cell["dataset"] for j in plan.jobs})
        outcome = launch.launch(plan, output_root, args.launcher, args.extra)
    except UserError as exc:
        print(f"reproduce: error: {exc}", file=sys.stderr)
        return 2
    final = launch.statuses(plan, output_root)
    print(f"[reproduce] launched {len(outcome['launched'])}, skipped {len(outcome['skipped'])} completed, "
          f"waited for {len(outcome['held'])} trained by another process")
    bad = {n: s for n, s in final.items() if s != "completed"}
    for name, st in sorted(bad.items()):
        print(f"[reproduce] {st}: {name}" + (" (its FP run did not complete)" if name in outcome["blocked"] else ""))
    make_tables.render(args.table, args.scale, "runs", output_root, args.tables, args.figures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
