"""The finished runs a user points at, read alike from run directories and from a wandb project.

A run directory (src.engine.run_files) holds ``results.json`` (status, accuracies, timings and the
resolved config under ``config``) and ``summary.csv`` (one row per epoch). A directory is taken
for a run when it holds results.json, ``.hydra/config.yaml`` or ``train.log``: a run that was
refused, killed or is still going has the latter without the former, and is reported, not skipped
silently. From wandb (``wandb.Api().runs(<entity>/<project>)``) a run gives its config (proxbin
logs the resolved config), its summary (``status``, ``final_test_acc``, ``best_test_acc`` and the
last epoch's row) and, for curves, its per-epoch history rows.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from src.core.errors import UserError
from src.sweeps.store import is_wandb_project, wandb_status

RUN_MARKERS = ("results.json", ".hydra/config.yaml", "train.log")


@dataclass
class RunResult:
    name: str
    origin: str                              # the run directory, or wandb:<entity>/<project>/<id>
    status: str                              # completed | running | interrupted | failed | diverged | no results.json
    config: dict[str, Any]                   # the resolved config ({} when it could not be read)
    metrics: dict[str, float]                # numeric entries of results.json (or of the wandb summary)
    read_history: Callable[[], list[dict[str, Any]]] = field(repr=False, default=list)
    _history: list[dict[str, Any]] | None = field(repr=False, default=None)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def history(self) -> list[dict[str, Any]]:
        """The per-epoch rows (summary.csv, or the wandb history rows that carry an ``epoch``), read once."""
        if self._history is None:
            self._history = list(self.read_history())
        return self._history

    def curve(self, column: str) -> list[tuple[float, float]]:
        """(epoch, value) of ``column`` for every epoch that has it."""
        out = []
        for row in self.history():
            try:
                out.append((float(row["epoch"]), float(row[column])))
            except (KeyError, TypeError, ValueError):  # an epoch without that column (e.g. soft accuracy off)
                continue
        return out


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def summary_rows(run_dir: Path) -> list[dict[str, str]]:
    try:
        with open(run_dir / "summary.csv", newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def read_run_dir(run_dir: Path) -> RunResult:
    run_dir = Path(run_dir)
    try:
        results = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        results = None
    if not isinstance(results, dict):
        return RunResult(run_dir.name, str(run_dir), "no results.json", {}, {})
    return RunResult(run_dir.name, str(run_dir), str(results.get("status", "unknown")),
                     dict(results.get("config") or {}), _numbers(results), lambda: summary_rows(run_dir))


def is_run_dir(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in RUN_MARKERS)


def find_run_dirs(paths: Iterable[Path | str]) -> list[Path]:
    """The run directories among ``paths`` and below them (a sweep directory, a folder of runs, or
    run directories themselves), in path order; a run directory is not searched further."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise UserError(f"{path} is not a directory: give a sweep directory (outputs/multirun/<sweep>), a "
                            f"folder of run directories, or run directories (each holds results.json)")
        if is_run_dir(path):
            found.append(path)
            continue
        for folder, subdirs, _ in os.walk(path):
            subdirs.sort()
            here = Path(folder)
            if here != path and is_run_dir(here):
                found.append(here)
                subdirs.clear()
    return list(dict.fromkeys(found))


def from_run_dirs(paths: Iterable[Path | str]) -> list[RunResult]:
    paths = list(paths)
    dirs = find_run_dirs(paths)
    if not dirs:
        raise UserError(f"no run directory under {', '.join(map(str, paths))}: a run directory holds results.json "
                        f"(or, until it finishes, train.log); give a sweep directory such as outputs/multirun/<sweep>")
    return [read_run_dir(d) for d in dirs]


def from_wandb(path: str, api: Any = None) -> list[RunResult]:
    """Every run of wandb project ``<entity>/<project>``. ``api``: a ``wandb.Api`` (made here if None)."""
    if not is_wandb_project(path):
        raise UserError(f"--wandb {path!r}: expected <entity>/<project>, e.g. --wandb my-team/proxbin")
    try:
        if api is None:
            import wandb

            api = wandb.Api()
        runs = list(api.runs(path))
    except Exception as exc:  # no network, no credentials, no such project: wandb raises many kinds
        raise UserError(f"could not read the runs of wandb project {path} ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}). Check the network and your login (`wandb login` "
                        f"or WANDB_API_KEY), or compare the run directories instead: "
                        f"scripts/compare.py <sweep dir>") from None
    return [_wandb_result(run, path) for run in runs]


def _wandb_result(run: Any, path: str) -> RunResult:
    summary = dict(getattr(run, "summary", None) or {})
    status = wandb_status(summary, getattr(run, "state", ""))
    run_id = getattr(run, "id", None) or getattr(run, "name", "?")

    def read_history() -> list[dict[str, Any]]:  # proxbin logs each epoch's row with its ``epoch``
        return [row for row in run.scan_history() if row.get("epoch") is not None]

    config = {k: v for k, v in dict(getattr(run, "config", None) or {}).items() if not str(k).startswith("_")}
    return RunResult(str(getattr(run, "name", run_id)), f"wandb:{path}/{run_id}", str(status), config,
                     _numbers(summary), read_history)
