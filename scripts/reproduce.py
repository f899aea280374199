"""One command per paper table or figure: launch the missing runs of its sweep, then render it.

    python scripts/reproduce.py <paper>/<table>|all scale=paper|mini|smoke [launcher=local|slurm]
        [--dry-run] [--only key=v1,v2 ...] [--output-root DIR] [--tables DIR] [--figures DIR]
        [--tflops T] [-- extra train overrides, e.g. trainer.device=cuda logger=wandb]

The sweep is declared in configs/sweep/<paper>/<table>.yaml (grid, published budget, seeds)
and scaled by configs/reproduce/scales.yaml. A run is identified by what it trains (its resolved
config, src/core/identity.py), not by the table that asks for it: every sweep's runs go to
<output root>/sweeps/runs/<run name>_<identity>, so a cell another table already ran is read from
that run, a second invocation launches nothing, interrupted runs resume from their checkpoint,
failed or diverged runs are reported (delete the run directory to retry), a deleted run is run
again, and a run another process is training (a second invocation) is waited for, not run twice.
launcher=<name> selects hydra/launcher=<name> (configs/hydra/launcher/<name>.yaml). The table is
rendered into results/tables and results/figures at scale=paper, into <output root>/tables and
<output root>/figures at the other scales (--tables/--figures choose other folders).
--dry-run lists the runs it would launch with their estimated cost and the other tables that read
them, and launches nothing; ``all --dry-run`` counts and prices the runs of every table once.
A launch needs its scale named: a bare ``reproduce.py <table>`` exits 2 with the choices rather
than start the paper budget (hundreds of GPU-hours for some tables) by default; --dry-run without a
scale prices the paper budget. Before it launches, the command prints the number of unique runs,
how many are left to launch and their estimated GPU-hours.

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
from src.reporting.tables import output_dirs  # noqa: E402
from src.sweeps import launch, smoke_data, spec, spec_files  # noqa: E402
from src.sweeps.cells import CELL_KEYS  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import make_tables  # noqa: E402


# what each scale of configs/reproduce/scales.yaml is for (the refusal of a launch without a scale lists them)
SCALE_USE = {"smoke": "fabricated data and tiny models, one step: minutes on a CPU, checks the whole path",
             "mini": "a workstation: few epochs on a data subset, one seed",
             "paper": "the published budget and seeds: `--dry-run scale=paper` prints its runs and GPU-hours first"}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="key=value arguments: scale=..., launcher=...; anything after -- is "
                                       "passed to every run as a Hydra override")
    p.add_argument("table", help=f"'all' or one of: {', '.join(spec_files.list_specs())}")
    p.add_argument("settings", nargs="*",
                   help=f"scale={'|'.join(spec_files.scales())}, launcher={'|'.join(options('hydra/launcher'))}")
    p.add_argument("--dry-run", action="store_true", help="list the runs it would launch, with estimated cost")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                   help="restrict to cells whose key (dataset, model, pipeline, task, method, variant, seed) "
                        "is one of the values; FP runs the kept FT runs start from are kept")
    p.add_argument("--output-root", type=Path, default=None, help="$PROXBIN_OUTPUT or outputs")
    p.add_argument("--tables", type=Path, default=None,
                   help="tables folder (default: results/tables at scale=paper, <output root>/tables otherwise)")
    p.add_argument("--figures", type=Path, default=None,
                   help="figures folder (default: results/figures at scale=paper, <output root>/figures otherwise)")
    p.add_argument("--tflops", type=float, default=None, help="sustained TFLOP/s assumed by the cost estimate")
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    args.extra = extra
    settings = {"scale": None, "launcher": "local"}
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


def missing_scale(table: str) -> UserError:
    choices = "; ".join(f"scale={s} ({SCALE_USE.get(s, 'configs/reproduce/scales.yaml')})" for s in spec_files.scales())
    return UserError(f"name the scale to launch {table} at: {choices}. Nothing was launched: a bare command does not "
                     f"start the paper budget.")


def announce(plans: list[spec.Plan]) -> None:
    """Before anything starts: the unique runs of the command (a run several tables read counts
    once), how many are left to launch, and their estimated cost."""
    unique = {j.run_id: (p, j) for p in plans for j in p.jobs}
    todo = [j for p, j in unique.values() if launch.status(p.run_dir(j)) not in ("completed", *launch.REPORT)]
    hours = sum(j.gpu_hours for j in todo)
    label = plans[0].table if len(plans) == 1 else f"{len(plans)} tables"
    print(f"[reproduce] {label} at scale={plans[0].scale}: {len(unique)} unique runs, {len(todo)} to launch, "
          f"estimated {hours:.2f} GPU-hours (configs/reproduce/cost.yaml; --dry-run lists them)", flush=True)


def dry_run(plan: spec.Plan) -> None:
    """Every run of the plan: stage, epochs, images per epoch, GPU-hours, state, the other tables
    that read it; then what is left to launch and its cost."""
    states = launch.statuses(plan)
    todo = [j for j in plan.jobs if states[j.run_name] not in ("completed", *launch.REPORT)]
    shared = [j for j in plan.jobs if j.shared_with]
    print(f"{plan.table} at scale={plan.scale}: {len(plan.jobs)} runs ({len(shared)} shared with other tables), "
          f"{len(plan.jobs) - len(todo)} done or reported, {len(todo)} to launch")
    print(f"{'stage':>5}  {'run':<72} {'epochs':>6} {'img/epoch':>10} {'GPU-h':>9}  {'status':<10} shared with")
    for j in plan.jobs:
        print(f"{j.stage:>5}  {j.run_name:<72} {j.epochs:>6} {j.train_images:>10} {j.gpu_hours:>9.3f}  "
              f"{states[j.run_name]:<10} {', '.join(j.shared_with) or '-'}" + (f"  (from {j.parent})" if j.parent else ""))
    total, common = sum(j.gpu_hours for j in todo), sum(j.gpu_hours for j in todo if j.shared_with)
    print(f"estimated cost of the runs to launch: {total:.2f} GPU-hours ({total * 3600:.0f} s), of which "
          f"{common:.2f} GPU-hours for runs other tables also read (run once, by whichever table comes first) "
          f"(a rough estimate: configs/reproduce/cost.yaml, 3 x forward FLOPs per image (4 x under KD) at a sustained "
          f"throughput, at most max_images_per_s)")
    for name, reason in plan.unchecked.items():
        print(f"could not check sharing with {name}: {reason}")


def dry_run_all(plans: list[spec.Plan]) -> None:
    """Per table: its runs, those shared with other tables, their GPU-hours; then every run once."""
    print(f"every table at scale={plans[0].scale}: runs per table, those other tables also read, GPU-hours")
    print(f"{'table':<18} {'runs':>6} {'shared':>7} {'GPU-h':>10}")
    for p in plans:
        print(f"{p.table:<18} {len(p.jobs):>6} {sum(1 for j in p.jobs if j.shared_with):>7} "
              f"{sum(j.gpu_hours for j in p.jobs):>10.2f}")
    unique = {j.run_id: j for p in plans for j in p.jobs}
    asked, cost = sum(len(p.jobs) for p in plans), sum(j.gpu_hours for p in plans for j in p.jobs)
    states = {i: launch.status(p.run_dir(j)) for p in plans for i, j in ((j.run_id, j) for j in p.jobs)}
    todo = [j for i, j in unique.items() if states[i] not in ("completed", *launch.REPORT)]
    print(f"all tables: {asked} runs asked for, {len(unique)} unique ({asked - len(unique)} asked for again by "
          f"another table); {sum(j.gpu_hours for j in unique.values()):.2f} GPU-hours for the unique runs "
          f"({cost:.2f} if every table ran its own); {len(todo)} unique runs to launch, "
          f"{sum(j.gpu_hours for j in todo):.2f} GPU-hours")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(list(sys.argv[1:] if argv is None else argv))
        output_root = (args.output_root or Path(os.environ.get("PROXBIN_OUTPUT", "outputs"))).resolve()
        tables = spec_files.list_specs() if args.table == "all" else [args.table]
        if args.table == "all" and args.only_map:
            raise UserError("--only selects cells of one table; with `all` give no --only")
        for table in tables:
            spec_files.load_spec(table)  # an unknown table is named before a missing scale
        if args.scale is None:
            if not args.dry_run:
                raise missing_scale(args.table)
            args.scale = "paper"  # a dry run launches nothing: it prices the published budget
        if args.dry_run and args.table == "all":
            dry_run_all(spec.plan_many(tables, args.scale, output_root, tflops=args.tflops, extra=args.extra))
            return 0
        plans = [spec.plan(t, args.scale, output_root, only=args.only_map or None, tflops=args.tflops,
                           extra=args.extra) for t in tables]
        if args.dry_run:
            spec.find_shared(plans[0], output_root, extra=args.extra)
            dry_run(plans[0])
            return 0
        announce(plans)
        if spec_files.load_scale(args.scale).get("fabricate_data"):
            smoke_data.ensure(output_root / "smoke_data", {j.cell["dataset"] for p in plans for j in p.jobs})
        outcomes = [launch.launch(p, output_root, args.launcher, args.extra) for p in plans]
    except UserError as exc:
        print(f"reproduce: error: {exc}", file=sys.stderr)
        return 2
    bad_any = False
    for plan, outcome in zip(plans, outcomes):
        final = launch.statuses(plan)
        print(f"[reproduce] {plan.table}: launched {len(outcome['launched'])}, skipped {len(outcome['skipped'])} "
              f"completed, waited for {len(outcome['held'])} trained by another process")
        bad = {n: s for n, s in final.items() if s != "completed"}
        for name, st in sorted(bad.items()):
            print(f"[reproduce] {st}: {name}" + (" (its FP run did not complete)" if name in outcome["blocked"] else ""))
        default_tables, default_figures = output_dirs(args.scale, output_root)
        make_tables.render(plan.table, args.scale, "runs", output_root, args.tables or default_tables,
                           args.figures or default_figures, extra=args.extra)
        bad_any = bad_any or bool(bad)
    return 1 if bad_any else 0


if __name__ == "__main__":
    sys.exit(main())
