"""The results store: the runs of a paper sweep, read from run directories or from wandb.

Both sources yield the same :class:`RunRecord` (the run's cell, status and accuracies), so a
table rendered from either is the same. A run belongs to a sweep through the ``cell`` node of
its config (paper, table, dataset, model, pipeline, task, method, variant, seed, scale), which
``scripts/reproduce.py`` puts into every job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from src.core.errors import UserError

METRICS = ("final_test_acc", "best_test_acc")


@dataclass(frozen=True)
class RunRecord:
    cell: dict[str, Any]
    status: str                      # completed | interrupted | failed | diverged | running
    final_test_acc: float | None
    best_test_acc: float | None
    origin: str                      # run directory or wandb path

    @property
    def source(self) -> tuple:
        """The cell without seed and scale: what the seeds of a table cell share."""
        c = self.cell
        return (c["dataset"], c["model"], c["pipeline"], c["task"], c["method"], c.get("variant", ""))

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


def _matches(cell: Any, paper: str | None, table: str | None) -> bool:
    return isinstance(cell, dict) and (paper is None or cell.get("paper") == paper) and \
        (table is None or cell.get("table") == table)


def read_run_dir(run_dir: Path) -> RunRecord | None:
    """The record of one run directory, or None when it has no results.json with a cell."""
    path = Path(run_dir) / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    cell = (results.get("config") or {}).get("cell")
    if not isinstance(cell, dict):
        return None
    return RunRecord(cell=cell, status=results.get("status", "unknown"), final_test_acc=results.get("final_test_acc"),
                     best_test_acc=results.get("best_test_acc"), origin=str(run_dir))


def from_run_dirs(root: Path | str, paper: str | None = None, table: str | None = None) -> list[RunRecord]:
    """Every ``results.json`` under ``root`` whose config's cell belongs to paper/table."""
    root = Path(root)
    if not root.exists():
        return []
    out = []
    for path in sorted(root.rglob("results.json")):
        record = read_run_dir(path.parent)
        if record is not None and _matches(record.cell, paper, table):
            out.append(record)
    return out


_WANDB_STATE = {"finished": "completed", "crashed": "failed", "failed": "failed", "killed": "interrupted",
                "running": "running"}


def from_wandb_runs(runs: Iterable[Any], paper: str | None = None, table: str | None = None) -> list[RunRecord]:
    """Records from wandb ``Run`` objects (``wandb.Api().runs(...)``): the cell from the run's
    config, the status and accuracies from its summary (proxbin writes ``status``,
    ``final_test_acc`` and ``best_test_acc`` there), else the status from the run's state."""
    out = []
    for run in runs:
        config = dict(run.config or {})
        cell = config.get("cell")
        if not _matches(cell, paper, table):
            continue
        summary = dict(run.summary or {})
        status = summary.get("status") or _WANDB_STATE.get(getattr(run, "state", ""), "unknown")
        out.append(RunRecord(cell=dict(cell), status=status, final_test_acc=summary.get("final_test_acc"),
                             best_test_acc=summary.get("best_test_acc"),
                             origin=f"wandb:{'/'.join(getattr(run, 'path', []) or [])}"))
    return out


def from_wandb(path: str, paper: str, table: str, api: Any = None) -> list[RunRecord]:
    """The runs of wandb project ``<entity>/<project>`` in group ``<paper>/<table>``."""
    if path.count("/") != 1 or not all(path.split("/")):
        raise UserError(f"--source wandb:{path}: expected wandb:<entity>/<project>")
    if api is None:
        import wandb

        api = wandb.Api()
    return from_wandb_runs(api.runs(path, filters={"group": f"{paper}/{table}"}), paper, table)


def load(source: str, paper: str, table: str, output_root: Path | str = "outputs", api: Any = None) -> list[RunRecord]:
    """``runs`` (the sweep's run directories under ``<output_root>/multirun``), ``runs:<folder>``
    (any folder), or ``wandb:<entity>/<project>``."""
    if source == "runs":
        return from_run_dirs(Path(output_root) / "multirun" / paper / table, paper, table)
    if source.startswith("runs:"):
        return from_run_dirs(Path(source[len("runs:"):]), paper, table)
    if source.startswith("wandb:"):
        return from_wandb(source[len("wandb:"):], paper, table, api=api)
    raise UserError(f"--source {source!r} is not one of: runs, runs:<folder>, wandb:<entity>/<project>")
