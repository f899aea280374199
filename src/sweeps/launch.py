"""Launch the missing jobs of a plan as Hydra multiruns of ``src/train.py``.

Each job is written as a Hydra experiment config (``# @package _global_``: group choices in its
defaults list, values, its cell) into ``<sweep dir>/.jobs/<scale>/experiment/<run name>.yaml``, and
one multirun per stage runs them all through the chosen ``hydra/launcher``:

    python src/train.py -m --config-dir <sweep dir>/.jobs/<scale> experiment=<run 1>,<run 2>,... \
        hydra/sweeper=cells hydra/launcher=<local|slurm> output_root=<root> [extra overrides]

Stage 0 holds the FP runs that fine-tuning runs start from; stage 1 the rest, launched only for
FT jobs whose FP run completed. What a run directory holds decides whether a job is launched:
completed -> skipped; failed or diverged -> reported, not relaunched (delete the run directory
to retry); interrupted or a checkpoint without results -> launched (the engine resumes from
``checkpoints/last.pt``); nothing -> launched. A run directory that another process holds (its
lock, src.core.lock; e.g. a second reproduce.py of the same table) is not launched but waited for,
as are the launched jobs, before the next stage and the final statuses are read: two concurrent
invocations train each run once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from src.core.config_tree import ROOT
from src.core.lock import holder_of
from src.sweeps.jobs import Job, job_config
from src.sweeps.spec import Plan

TRAIN = ROOT / "src" / "train.py"
LAUNCH = ("missing", "interrupted", "partial")
REPORT = ("failed", "diverged")


def run_dir(plan: Plan, job: Job, output_root: Path | str) -> Path:
    paper, name = plan.table.split("/")
    return Path(output_root).resolve() / "multirun" / paper / name / job.run_name


def status(directory: Path) -> str:
    """completed | interrupted | failed | diverged | partial (a checkpoint, no results) | missing."""
    try:
        return json.loads((directory / "results.json").read_text()).get("status", "partial")
    except (OSError, ValueError):
        return "partial" if (directory / "checkpoints" / "last.pt").exists() else "missing"


def statuses(plan: Plan, output_root: Path | str) -> dict[str, str]:
    return {j.run_name: status(run_dir(plan, j, output_root)) for j in plan.jobs}


def write_job_configs(plan: Plan, jobs: list[Job], output_root: Path | str) -> Path:
    paper, name = plan.table.split("/")
    config_dir = Path(output_root).resolve() / "multirun" / paper / name / ".jobs" / plan.scale
    folder = config_dir / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        text = (f"# @package _global_\n# {plan.table} at scale={plan.scale}, written by scripts/reproduce.py\n"
                + yaml.safe_dump(job_config(job, plan.table), sort_keys=False))
        (folder / f"{job.run_name}.yaml").write_text(text)
    return config_dir


def multirun_command(plan: Plan, jobs: list[Job], output_root: Path | str, launcher: str,
                     extra: list[str]) -> list[str]:
    config_dir = write_job_configs(plan, jobs, output_root)
    return [sys.executable, str(TRAIN), "-m", "--config-dir", str(config_dir),
            "experiment=" + ",".join(j.run_name for j in jobs), f"++experiment_name={plan.table}",
            "hydra/sweeper=cells", f"hydra/launcher={launcher}", f"output_root={Path(output_root).resolve()}",
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
    skipped (completed before), reported (failed/diverged before), blocked (FP run not completed),
    held (by another process, waited for)."""
    extra = list(extra or [])
    before = statuses(plan, output_root)
    out: dict[str, list[str]] = {"launched": [], "skipped": [], "reported": [], "blocked": [], "held": []}
    for stage in (0, 1):
        todo, held = [], []
        for job in (j for j in plan.jobs if j.stage == stage):
            st = status(run_dir(plan, job, output_root))
            if st == "completed":
                out["skipped"].append(job.run_name)
            elif st in REPORT:
                out["reported"].append(job.run_name)
            elif job.parent and status(run_dir(plan, plan.job(job.parent), output_root)) != "completed":
                out["blocked"].append(job.run_name)
            elif holder_of(run_dir(plan, job, output_root)) is not None:
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
        wait_for_holders([run_dir(plan, j, output_root) for j in (*todo, *held)], log)
    out["skipped"] = [n for n in out["skipped"] if before.get(n) == "completed"]
    return out
