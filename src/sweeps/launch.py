"""Launch the missing jobs of a plan as Hydra multiruns of ``src/train.py``.

Every sweep's runs live in one folder, ``<output root>/sweeps/runs/<run name>`` (the run name ends
with the run's identity, :mod:`src.sweeps.jobs`), so a run that several tables print is trained
once: the table launched second finds it completed and skips it. Each job is written as a Hydra
experiment config (``# @package _global_``: group choices in its defaults list, values, identity,
labels) into ``<output root>/sweeps/.jobs/experiment/<run name>.yaml``, the same file whichever table
writes it, and one multirun per stage runs them all through the chosen ``hydra/launcher``:

    python src/train.py -m --config-dir <output root>/sweeps/.jobs experiment=<run 1>,<run 2>,... \
        hydra/sweeper=cells hydra/launcher=<local|slurm> hydra.sweep.dir=<runs folder> \
        output_root=<root> [extra overrides]

Stage 0 holds the FP runs that fine-tuning runs start from; stage 1 the rest, launched only for
FT jobs whose FP run completed. What a run directory holds decides whether a job is launched:
completed -> skipped; failed or diverged -> reported, not relaunched (delete the run directory
to retry); interrupted or a checkpoint without results -> launched (the engine resumes from
``checkpoints/last.pt``); nothing -> launched. The table's cells and the runs that fill them are
written to ``<output root>/sweeps/<paper>/<table>/<scale>.cells.json``. A run directory that another
process holds (its lock, src.core.lock; e.g. a second reproduce.py of a table sharing it) is not
launched but waited for, as are the launched jobs, before the next stage and the final statuses are
read: two concurrent invocations train each run once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from src.core.config_tree import ROOT
from src.core.io import atomic_write_text
from src.core.lock import holder_of
from src.sweeps.jobs import Job, job_config
from src.sweeps.spec import Plan

TRAIN = ROOT / "src" / "train.py"
LAUNCH = ("missing", "interrupted", "partial")
REPORT = ("failed", "diverged")


def status(directory: Path) -> str:
    """completed | interrupted | failed | diverged | partial (a checkpoint, no results) | missing."""
    try:
        return json.loads((directory / "results.json").read_text()).get("status", "partial")
    except (OSError, ValueError):
        return "partial" if (directory / "checkpoints" / "last.pt").exists() else "missing"


def statuses(plan: Plan) -> dict[str, str]:
    return {j.run_name: status(plan.run_dir(j)) for j in plan.jobs}


def jobs_dir(plan: Plan) -> Path:
    """Where the job configs are written: beside the runs folder, shared by every table."""
    return plan.runs_root.parent / ".jobs"


# OmegaConf reads a plain scalar such as 1234e5678901 (a run identity is 12 hex digits) as a float;
# PyYAML would write it unquoted. Strings that look like numbers are therefore written quoted.
_NUMBER_LIKE = re.compile(r"^[-+]?(\.?[0-9][0-9_]*|[0-9][0-9_]*\.[0-9_]*)([eE][-+]?[0-9]+)?$|^[-+]?\.?(inf|nan)$", re.I)


class _JobDumper(yaml.SafeDumper):
    pass


_JobDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="'" if _NUMBER_LIKE.match(text) else None))


def write_job_configs(plan: Plan, jobs: list[Job]) -> Path:
    folder = jobs_dir(plan) / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        text = (f"# @package _global_\n# a paper-sweep run (scale={job.labels['scale']}), written by "
                f"scripts/reproduce.py\n" + yaml.dump(job_config(job), Dumper=_JobDumper, sort_keys=False))
        atomic_write_text(folder / f"{job.run_name}.yaml", text)
    return jobs_dir(plan)


def write_manifest(plan: Plan) -> Path:
    """``<sweeps>/<paper>/<table>/<scale>.cells.json``: each printed cell and the run names that fill it."""
    names = {j.run_id: j.run_name for j in plan.jobs}
    cells = [{"row": dict(zip(("dataset", "model", "pipeline", "task", "variant"), c.row)), "method": c.method,
              "runs": [names.get(i, i) for i in c.runs], "literature": c.source is None} for c in plan.cells]
    paper, name = plan.table.split("/")
    path = plan.runs_root.parent / paper / name / f"{plan.scale}.cells.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"table": plan.table, "scale": plan.scale, "cells": cells}, indent=1) + "\n")
    return path


def multirun_command(plan: Plan, jobs: list[Job], output_root: Path | str, launcher: str,
                     extra: list[str]) -> list[str]:
    config_dir = write_job_configs(plan, jobs)
    return [sys.executable, str(TRAIN), "-m", "--config-dir", str(config_dir),
            "experiment=" + ",".join(j.run_name for j in jobs), "hydra/sweeper=cells", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={plan.runs_root}", f"output_root={Path(output_root).resolve()}",
            "wait_for_lock=false", *extra]  # a run another process took meanwhile is refused, then waited for


def wait_for_holders(directories: list[Path], log=print, poll_s: float = 2.0) -> None:
    """Return once no other process holds any of ``directories``."""
    held = [d for d in directories if holder_of(d) is not None]
    if held:
        log(f"[reproduce] waiting for {len(held)} run(s) that other processes are training ({held[0].name}, ...)")
    while held:
        time.sleep(poll_s)
        held = [d for d in held if holder_of(d) is not None]


def launch(plan: Plan, output_root: Path | str, launcher: str = "local", extra: list[str] | None = None,
           log=print) -> dict[str, list[str]]:
    """Run what is missing, stage by stage. Returns the run names per outcome: launched,
    skipped (completed before, by this table or another), reported (failed/diverged before),
    blocked (FP run not completed), held (by another process, waited for)."""
    extra = list(extra or [])
    before = statuses(plan)
    write_manifest(plan)
    out: dict[str, list[str]] = {"launched": [], "skipped": [], "reported": [], "blocked": [], "held": []}
    for stage in (0, 1):
        todo, held = [], []
        for job in (j for j in plan.jobs if j.stage == stage):
            st = status(plan.run_dir(job))
            if st == "completed":
                out["skipped"].append(job.run_name)
            elif st in REPORT:
                out["reported"].append(job.run_name)
            elif job.parent and status(plan.run_dir(plan.job(job.parent))) != "completed":
                out["blocked"].append(job.run_name)
            elif holder_of(plan.run_dir(job)) is not None:
                held.append(job)
            else:
                todo.append(job)
        if todo:
            log(f"[reproduce] {plan.table} scale={plan.scale}: stage {stage}: launching {len(todo)} run(s) "
                f"with hydra/launcher={launcher}")
            command = multirun_command(plan, todo, output_root, launcher, extra)
            # the repository root on the path: Hydra finds the `cells` sweeper in hydra_plugins/ there
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
            result = subprocess.run(command, cwd=ROOT, env={**os.environ, "HYDRA_FULL_ERROR": "1", "PYTHONPATH": path})
            if result.returncode != 0:
                log(f"[reproduce] the multirun exited with code {result.returncode}")
            out["launched"] += [j.run_name for j in todo]
        out["held"] += [j.run_name for j in held]
        wait_for_holders([plan.run_dir(j) for j in (*todo, *held)], log)
    out["skipped"] = [n for n in out["skipped"] if before.get(n) == "completed"]
    return out
