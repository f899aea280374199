"""A paper sweep's plan: its spec at a scale -> the jobs to run and the table cells they fill.

Three plain steps: the cell product (:mod:`src.sweeps.cells`: grid blocks -> printed cells and
the runs they need), the job builder (:mod:`src.sweeps.jobs`: runs -> jobs with run names,
overrides and FT parents) and the cost estimator (:mod:`src.sweeps.cost`: jobs -> images per
epoch and GPU-hours). The ``scale`` (configs/reproduce/scales.yaml: paper | mini | smoke)
replaces budget, seeds, data and models; every job carries its cell (paper, table, dataset,
model, pipeline, task, method, variant, seed, scale) in its config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.core.errors import UserError
from src.sweeps import cells, spec_files
from src.sweeps.cells import TableCell
from src.sweeps.cost import CostModel
from src.sweeps.jobs import Job, JobBuilder


@dataclass
class Plan:
    table: str
    scale: str
    spec: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)
    cells: list[TableCell] = field(default_factory=list)
    metric: str = "final_test_acc"
    kind: str = "table"

    def job(self, run_name: str) -> Job:
        return next(j for j in self.jobs if j.run_name == run_name)


def plan(table: str, scale: str = "paper", output_root: Path | str = "outputs",
         only: dict[str, list[str]] | None = None, tflops: float | None = None, strict: bool = True) -> Plan:
    """Expand a spec at a scale into jobs (with dependencies and estimated cost) and table cells;
    ``only`` keeps the cells whose keys take one of the listed values (and the FP runs their FT
    runs start from). ``strict=False`` skips the checks that config files and variant overrides
    exist (for inspecting a grid whose models are not installed)."""
    if scale not in spec_files.scales():
        raise UserError(f"scale={scale!r} is not one of {', '.join(spec_files.scales())}")
    spec, settings = spec_files.load_spec(table), spec_files.load_scale(scale)
    printed, runs = cells.expand(spec, scale, settings, strict)
    jobs = JobBuilder(spec, settings, output_root, strict).build(runs)
    cost = CostModel(settings, tflops)
    for job in jobs:
        job.train_images = cost.train_images(job)
        job.gpu_hours = cost.gpu_hours(job, job.train_images)
    if only:
        jobs, printed = select(jobs, only), [c for c in printed if _cell_selected(c, only)]
    return Plan(table=f"{spec['paper']}/{spec['table']}", scale=scale, spec=spec,
                jobs=sorted(jobs, key=lambda j: j.stage), cells=printed,
                metric=spec.get("metric", "final_test_acc"), kind=spec.get("kind", "table"))


def select(jobs: list[Job], only: dict[str, list[str]]) -> list[Job]:
    """The jobs whose cell keys take one of the listed values, and the FP runs they start from."""
    keep = {j.run_name for j in jobs if all(str(j.cell[k]) in v for k, v in only.items())}
    keep |= {j.parent for j in jobs if j.run_name in keep and j.parent}
    return [j for j in jobs if j.run_name in keep]


def _cell_selected(cell: TableCell, only: dict[str, list[str]]) -> bool:
    keys = dict(zip(("dataset", "model", "pipeline", "task", "variant"), cell.row), method=cell.method)
    return all(keys[k] in v for k, v in only.items() if k in keys)
