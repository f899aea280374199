"""The results store: the runs of a paper sweep, read from run directories or from wandb.

Both sources yield the same :class:`RunRecord` (the run's identity, labels, status and
accuracies), so a table rendered from either is the same. A table reads the runs whose identity
(``run_id`` in the run's config, written by ``scripts/reproduce.py``) its plan names, whichever
table launched them: a run shared by Tables 2 and 7 is read by both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from src.core.errors import UserError
from src.sweeps.spec import Plan

METRICS = ("final_test_acc", "best_test_acc")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    cell: dict[str, Any]             # the run's labels (dataset, model, pipeline, task, method, seed, scale)
    status: str                      # completed | interrupted | failed | diverged | running
    final_test_acc: float | None
    best_test_acc: float | None
    origin: str                      # run directory or wandb path

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


def read_run_dir(run_dir: Path) -> RunRecord | None:
    """The record of one run directory, or None when it has no results.json with a run_id."""
    try:
        results = json.loads((Path(run_dir) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    config = results.get("config") or {}
    if not isinstance(config.get("run_id"), str):
        return None
    return RunRecord(run_id=config["run_id"], cell=dict(config.get("cell") or {}),
                     status=results.get("status", "unknown"), final_test_acc=results.get("final_test_acc"),
                     best_test_acc=results.get("best_test_acc"), origin=str(run_dir))


def from_run_dirs(root: Path | str, ids: Iterable[str]) -> list[RunRecord]:
    """Every ``results.json`` under ``root`` (any depth) of a run whose identity is one of ``ids``."""
    root, wanted = Path(root), set(ids)
    if not root.exists():
        return []
    records = (read_run_dir(path.parent) for path in sorted(root.rglob("results.json")))
    return [r for r in records if r is not None and r.run_id in wanted]


WANDB_STATE = {"finished": "completed", "crashed": "failed", "failed": "failed", "killed": "interrupted",
               "running": "running"}  # wandb's run state -> proxbin's status


def wandb_status(summary: dict[str, Any], state: str) -> str:
    """A wandb run's status: the one proxbin wrote to its summary, else its wandb ``state``'s."""
    return summary.get("status") or WANDB_STATE.get(state, "unknown")


def is_wandb_project(path: str) -> bool:
    """Whether ``path`` has the form ``<entity>/<project>``."""
    return path.count("/") == 1 and all(path.split("/"))


def from_wandb_runs(runs: Iterable[Any], ids: Iterable[str]) -> list[RunRecord]:
    """Records from wandb ``Run`` objects (``wandb.Api().runs(...)``) whose config's run_id is one
    of ``ids``: the status and accuracies from the run's summary (proxbin writes ``status``,
    ``final_test_acc`` and ``best_test_acc`` there), else the status from the run's state."""
    wanted, out = set(ids), []
    for run in runs:
        config = dict(run.config or {})
        if config.get("run_id") not in wanted:
            continue
        summary = dict(run.summary or {})
        status = wandb_status(summary, getattr(run, "state", ""))
        out.append(RunRecord(run_id=config["run_id"], cell=dict(config.get("cell") or {}), status=status,
                             final_test_acc=summary.get("final_test_acc"), best_test_acc=summary.get("best_test_acc"),
                             origin=f"wandb:{'/'.join(getattr(run, 'path', []) or [])}"))
    return out


def from_wandb(path: str, ids: Iterable[str], api: Any = None) -> list[RunRecord]:
    """The runs of wandb project ``<entity>/<project>`` whose config's run_id is one of ``ids``."""
    if not is_wandb_project(path):
        raise UserError(f"--source wandb:{path}: expected wandb:<entity>/<project>")
    if api is None:
        import wandb

        api = wandb.Api()
    ids = sorted(set(ids))
    return from_wandb_runs(api.runs(path, filters={"config.run_id": {"$in": ids}}), ids)


def load(source: str, plan: Plan, api: Any = None) -> list[RunRecord]:
    """The records of the runs the plan's cells name, from ``runs`` (the plan's runs folder,
    ``<output root>/sweeps/runs``), ``runs:<folder>`` (any folder, searched at any depth) or
    ``wandb:<entity>/<project>``."""
    ids = {i for c in plan.cells for i in c.runs}
    if source == "runs":
        records = (read_run_dir(plan.run_dir(j)) for j in plan.jobs if j.run_id in ids)
        return [r for r in records if r is not None and r.run_id in ids]
    if source.startswith("runs:"):
        return from_run_dirs(Path(source[len("runs:"):]), ids)
    if source.startswith("wandb:"):
        return from_wandb(source[len("wandb:"):], ids, api=api)
    raise UserError(f"--source {source!r} is not one of: runs, runs:<folder>, wandb:<entity>/<project>")
