"""The end of a multirun: one line per job, and whether every job completed.

Hydra runs a multirun's jobs and discards what they return, so a refused, failed or diverged job
would pass unnoticed. :class:`JobSummary` (a Hydra callback, ``hydra.callbacks`` in
configs/train.yaml) collects each job's outcome where the job runs (the job's process: the same
one for the local launcher, a SLURM node for the slurm launcher) into
``<sweep dir>/.multirun/<id>/<job>.json``, and prints them when the multirun ends, in the process
that started it. src/train.py then exits 1 when any job did not complete (``incomplete_jobs``).

A sweep's jobs mostly build the same model: :func:`shared_summary` keeps one copy of each distinct
model summary in ``<sweep dir>/model_summaries/``, so the job that writes it first prints it and the
others print one line pointing to it (the jobs may run in other processes or on other nodes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

_job: dict[str, Any] | None = None  # the outcome of the job running in this process (set by src/train.py)
_incomplete: list[dict[str, Any]] = []  # the jobs of the last multirun of this process that did not complete


def job_outcome(status: str, run_dir: Path | str, message: str | None = None, test_acc: float | None = None) -> None:
    """Called by the job itself: how it ended (completed, interrupted, failed, diverged, refused)."""
    global _job
    _job = {"status": status, "run_dir": str(run_dir), "message": message, "test_acc": test_acc}


def incomplete_jobs() -> list[dict[str, Any]]:
    return list(_incomplete)


def sweep_dir() -> Path | None:
    """The directory of the multirun this job belongs to; None outside a multirun."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return Path(str(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None


def shared_summary(sweep: Path, name: str, text: str) -> Path | None:
    """The sweep's copy of the model summary ``text`` (``name``: the model's), or None when this
    job is the first to write it and is to print it in full (also when the copy cannot be written).
    Exclusive creation: of jobs running at once, exactly one prints a given summary."""
    path = Path(sweep) / "model_summaries" / f"{name}_{hashlib.sha256(text.encode()).hexdigest()[:8]}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x") as f:
            f.write(text + "\n")
    except FileExistsError:
        return path
    except OSError:
        pass
    return None


class JobSummary(Callback):
    def __init__(self) -> None:
        self.folder: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _incomplete.clear()
        self.folder = Path(str(config.hydra.sweep.dir)) / ".multirun" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _job
        _job = None

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.folder is None or int(os.environ.get("RANK", "0")) > 0:  # a single run; a DDP run's other ranks
            return
        outcome = _job
        if outcome is None:  # the job raised past src/train.py
            message = "no outcome reported"
            if job_return.status == JobStatus.FAILED:
                try:
                    job_return.return_value  # raises the job's exception
                except Exception as error:
                    message = f"{type(error).__name__}: {error}"
            outcome = {"status": "failed", "run_dir": str(config.hydra.runtime.output_dir), "message": message}
        num = int(config.hydra.job.num)
        (self.folder / f"{num:06d}.json").write_text(json.dumps({"job": num, **outcome}))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.folder is None:
            return
        outcomes = [json.loads(p.read_text()) for p in sorted(self.folder.glob("*.json"))]
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()
        except OSError:
            pass
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o["status"]] = counts.get(o["status"], 0) + 1
        print(f"[multirun] {len(outcomes)} job(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for o in outcomes:
            detail = f"test acc {o['test_acc']:.2f}%" if o.get("test_acc") is not None else \
                " ".join((o.get("message") or "").split())[:240]
            print(f"  #{o['job']:<3} {o['status']:<11} {o['run_dir']}  {detail}")
        _incomplete[:] = [o for o in outcomes if o["status"] != "completed"]
