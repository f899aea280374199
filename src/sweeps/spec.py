"""A paper sweep's plan: its spec at a scale -> the jobs to run and the table cells they fill.

Four plain steps: the cell product (:mod:`src.sweeps.cells`: grid blocks -> printed cells and the
runs they need), the job builder (:mod:`src.sweeps.jobs`: runs -> jobs with overrides and FT
parents, each named by its identity, one job per identity), the cost estimator
(:mod:`src.sweeps.cost`: jobs -> images per epoch and GPU-hours), and the cells' run identities.
The ``scale`` (configs/reproduce/scales.yaml: paper | mini | smoke) replaces budget, seeds, data
and models. Runs are shared across tables by identity: :func:`plan_many` and :func:`find_shared`
say which other tables read a job's run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from src.core.errors import UserError
from src.sweeps import cells, spec_files
from src.sweeps.cells import TableCell
from src.sweeps.cost import CostModel
from src.sweeps.jobs import Job, JobBuilder, cell_name, runs_root


@dataclass
class Plan:
    table: str
    scale: str
    spec: dict[str, Any]
    runs_root: Path
    jobs: list[Job] = field(default_factory=list)
    cells: list[TableCell] = field(default_factory=list)
    metric: str = "final_test_acc"
    kind: str = "table"
    unchecked: dict[str, str] = field(default_factory=dict)   # tables whose sharing could not be checked: why

    def job(self, run_name: str) -> Job:
        return next(j for j in self.jobs if j.run_name == run_name)

    def run_dir(self, job: Job) -> Path:
        return self.runs_root / job.run_name


def plan(table: str, scale: str = "paper", output_root: Path | str = "outputs",
         only: dict[str, list[str]] | None = None, tflops: float | None = None, strict: bool = True,
         extra: Iterable[str] = ()) -> Plan:
    """Expand a spec at a scale into jobs (with dependencies, identities and estimated cost) and
    table cells; ``only`` keeps the cells whose keys take one of the listed values (and the FP runs
    their FT runs start from). ``strict=False`` skips the checks that config files and variant
    overrides exist (for inspecting a grid whose models are not installed). ``extra``: the
    overrides every run gets (part of each run's identity)."""
    if scale not in spec_files.scales():
        raise UserError(f"scale={scale!r} is not one of {', '.join(spec_files.scales())}")
    spec, settings = spec_files.load_spec(table), spec_files.load_scale(scale)
    printed, runs = cells.expand(spec, scale, settings, strict)
    builder = JobBuilder(spec, settings, output_root, strict, tuple(extra))
    jobs = builder.build(runs)
    if only:
        jobs, printed = select(jobs, only), [c for c in printed if _cell_selected(c, only)]
    jobs = builder.identify(jobs)
    cost = CostModel(settings, tflops)
    for job in jobs:
        job.train_images = cost.train_images(job)
        job.gpu_hours = cost.gpu_hours(job, job.train_images)
    printed = _with_runs(printed, jobs)
    return Plan(table=f"{spec['paper']}/{spec['table']}", scale=scale, spec=spec, runs_root=runs_root(output_root),
                jobs=sorted(jobs, key=lambda j: j.stage), cells=printed,
                metric=spec.get("metric", "final_test_acc"), kind=spec.get("kind", "table"))


def _with_runs(printed: list[TableCell], jobs: list[Job]) -> list[TableCell]:
    """The printed cells with the identities of the runs that fill them (by seed)."""
    runs: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    for job in jobs:
        for c in job.cells:
            runs[(c["dataset"], c["model"], c["pipeline"], c["task"], c["method"], c["variant"])].append(
                (c["seed"], job.run_id))
    return [replace(c, runs=tuple(dict.fromkeys(i for _, i in sorted(runs[c.source])))) if c.source else c
            for c in printed]


def select(jobs: list[Job], only: dict[str, list[str]]) -> list[Job]:
    """The (not yet identified) jobs whose cell keys take one of the listed values, and the FP runs
    they start from."""
    keep = {cell_name(j.cell) for j in jobs if all(str(j.cell[k]) in v for k, v in only.items())}
    keep |= {j.parent for j in jobs if cell_name(j.cell) in keep and j.parent}
    return [j for j in jobs if cell_name(j.cell) in keep]


def _cell_selected(cell: TableCell, only: dict[str, list[str]]) -> bool:
    keys = dict(zip(("dataset", "model", "pipeline", "task", "variant"), cell.row), method=cell.method)
    return all(keys[k] in v for k, v in only.items() if k in keys)


def plan_many(tables: Iterable[str], scale: str = "paper", output_root: Path | str = "outputs",
              tflops: float | None = None, strict: bool = True, extra: Iterable[str] = ()) -> list[Plan]:
    """The plans of several tables at one scale, each job's ``shared_with`` naming the other
    tables of the list that read its run."""
    plans = [plan(t, scale, output_root, tflops=tflops, strict=strict, extra=extra) for t in tables]
    readers: dict[str, set[str]] = defaultdict(set)
    for p in plans:
        for job in p.jobs:
            readers[job.run_id].add(p.table)
    for p in plans:
        for job in p.jobs:
            job.shared_with = sorted(readers[job.run_id] - {p.table})
    return plans


def find_shared(target: Plan, output_root: Path | str = "outputs", extra: Iterable[str] = ()) -> None:
    """Fill ``shared_with`` of the target's jobs from every other spec at the same scale. Only the
    other specs' jobs that could share a run with the target (the same group choices) and the FP
    runs they start from are identified, so this costs little beyond the target's own plan. A spec
    that cannot be planned is listed in ``target.unchecked`` with the reason."""
    wanted = {_choices(j) for j in target.jobs}
    for name in spec_files.list_specs():
        if name == target.table:
            continue
        try:
            spec, settings = spec_files.load_spec(name), spec_files.load_scale(target.scale)
            builder = JobBuilder(spec, settings, output_root, True, tuple(extra))
            built = builder.build(cells.expand(spec, target.scale, settings)[1])
            keep = {cell_name(j.cell) for j in built if _choices(j) in wanted}
            keep |= {j.parent for j in built if cell_name(j.cell) in keep and j.parent}
            ids = {j.run_id for j in builder.identify([j for j in built if cell_name(j.cell) in keep])}
        except UserError as exc:
            target.unchecked[name] = str(exc)
            continue
        for job in target.jobs:
            if job.run_id in ids:
                job.shared_with.append(name)


def _choices(job: Job) -> tuple:
    return tuple(sorted(job.groups.items()))
