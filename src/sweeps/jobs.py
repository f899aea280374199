"""The job builder: the runs of the cell product -> :class:`Job`s (run name, Hydra group choices
and value overrides, FT parent), and a job as the Hydra experiment config the launcher writes.

A run's overrides stack, later ones winning: the cell's groups (the scale may stand a small model
in for the paper's), the pipeline's budget, the spec's, the block's, the block's per task, the
spec's per method, the variant's, the scale's and the scale's per dataset. The run name is a
function of the cell, so a rerun finds the same directory (and resumes or skips it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.core.config_tree import CONFIG_DIR, option_file
from src.core.errors import UserError
from src.sweeps import smoke_data
from src.sweeps.cells import CELL_KEYS, RunCell


@dataclass
class Job:
    """One training run of a sweep."""

    cell: dict[str, Any]
    run_name: str
    groups: dict[str, str]
    values: list[str]
    parent: str | None = None          # run name of the FP run an FT job starts from
    children: int = 0                  # jobs that start from this one
    epochs: int = 0
    train_images: int = 0              # per epoch
    gpu_hours: float = 0.0

    @property
    def stage(self) -> int:
        """Jobs others start from run first (their own multirun), so that an array launcher
        never starts a fine-tuning run before its checkpoint exists."""
        return 0 if self.children else 1


@lru_cache(maxsize=None)
def config_groups() -> tuple[str, ...]:
    """The config groups of configs/train.yaml's defaults list (``dataset``, ``model``, ...): an
    override ``group=option`` selects the file configs/<group>/<option>.yaml."""
    groups = []
    for entry in OmegaConf.load(CONFIG_DIR / "train.yaml").defaults:
        if isinstance(entry, str):            # _self_
            continue
        (key,) = entry.keys()
        if not key.startswith("override "):
            groups.append(key.removeprefix("optional "))
    return tuple(groups)


def slug(text: str) -> str:
    """A file-name-safe form of a variant name ("scaling=1,kd=0" -> "scaling1-kd0")."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text.replace("=", "")).strip("-")


def run_name(cell: dict[str, Any]) -> str:
    variant = f"_{slug(cell['variant'])}" if cell["variant"] else ""
    return (f"{cell['dataset']}_{cell['model']}_{cell['pipeline']}_{cell['task']}_{cell['method']}{variant}"
            f"_seed{cell['seed']}_{cell['scale']}")


def split_overrides(overrides: list[str]) -> tuple[dict[str, str], list[str]]:
    """``["optimizer=adam", "optimizer.lr=0.01"]`` -> ({"optimizer": "adam"}, ["optimizer.lr=0.01"])."""
    groups, values = {}, []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"override {item!r} is not of the form key=value")
        if key in config_groups():
            groups[key] = value
        else:
            values.append(item)
    return groups, values


class JobBuilder:
    """Builds the jobs of one spec at one scale. ``strict=False`` skips the check that each group
    choice has its config file (for inspecting a grid whose models are not installed)."""

    def __init__(self, spec: dict, settings: dict, output_root: Path | str, strict: bool = True):
        self.spec, self.settings, self.strict = spec, settings, strict
        self.where = f"{spec['paper']}/{spec['table']}"
        self.run_root = Path(output_root).resolve() / "multirun" / spec["paper"] / spec["table"]
        self.data_root = Path(output_root).resolve() / "smoke_data"

    def build(self, runs: list[RunCell]) -> list[Job]:
        """One job per distinct run name, the first run of that name deciding its overrides, in
        the order the runs come; an FT job's parent comes before it."""
        jobs: dict[str, Job] = {}
        for run in runs:
            name = run_name(run.cell)
            if name in jobs:
                continue
            parent = None
            if run.parent is not None:
                parent_name = run_name(run.parent.cell)
                if parent_name not in jobs:
                    jobs[parent_name] = self.job(run.parent)
                parent = jobs[parent_name]
                parent.children += 1
            jobs[name] = self.job(run, parent)
        return list(jobs.values())

    def job(self, run: RunCell, parent: Job | None = None) -> Job:
        epochs, overrides = _overrides(self.spec, self.settings, run, self.data_root)
        groups, values = split_overrides(overrides)
        if self.strict:
            for group, option in groups.items():
                _check_option(group, option, self.where)
        if parent is not None:
            values.append(f"pipeline.checkpoint={self.run_root / parent.run_name / 'checkpoints' / 'best.pt'}")
        if run.pretrained:
            values.append("pipeline.pretrained=true")
        values.append(f"trainer.max_epochs={epochs}")
        return Job(cell=run.cell, run_name=run_name(run.cell), groups=groups, values=values,
                   parent=parent.run_name if parent else None, epochs=epochs)


def _overrides(spec: dict, settings: dict, run: RunCell, data_root: Path) -> tuple[int, list[str]]:
    """The run's epochs and its stack of overrides (groups and values, in order)."""
    cell, block = run.cell, spec["grid"][run.block]
    pipeline, dataset = cell["pipeline"], cell["dataset"]
    budget = (spec.get("budget") or {}).get(pipeline)
    if budget is None:
        raise UserError(f"{cell['paper']}/{cell['table']}: no budget for pipeline {pipeline!r} "
                        f"(budget.{pipeline}.epochs)")
    epochs = int((settings.get("epochs") or {}).get(pipeline) or budget["epochs"])
    model = (settings.get("models") or {}).get(cell["model"], cell["model"])
    overrides = [f"dataset={dataset}", f"model={model}", f"quantizer={cell['method']}", f"pipeline={pipeline}",
                 f"task={cell['task']}", *(budget.get("overrides") or []), *(spec.get("overrides") or []),
                 *(block.get("overrides") or []), *((block.get("task_overrides") or {}).get(cell["task"]) or []),
                 *((spec.get("method_overrides") or {}).get(cell["method"]) or []), *run.variant_overrides,
                 *(settings.get("overrides") or []), *((settings.get("dataset_overrides") or {}).get(dataset) or [])]
    if settings.get("fabricate_data"):
        overrides.append(f"dataset.splits.root={smoke_data.dataset_root(data_root, dataset)}")
    return epochs, overrides


def _check_option(group: str, option: str, where: str) -> None:
    try:
        option_file(group, option)
    except ValueError as exc:
        raise UserError(f"{where}: {exc} (configs/{group}/<name>.yaml)") from None


def job_config(job: Job, table: str) -> dict[str, Any]:
    """The job as a Hydra experiment config (``# @package _global_``): group choices in its
    defaults list, values as a nested mapping, its cell, and wandb's group/job_type/tags
    (``table`` = ``<paper>/<table>``, the sweep's experiment name and wandb group)."""
    body = OmegaConf.to_container(OmegaConf.from_dotlist(job.values)) if job.values else {}
    cell = job.cell
    tags = [f"{k}:{cell[k]}" for k in CELL_KEYS if cell[k] != ""]
    config = {
        "defaults": [{f"override /{g}": o} for g, o in job.groups.items()],
        "experiment_name": table, "run_name": job.run_name, "seed": cell["seed"], "cell": dict(cell),
    }
    merged = OmegaConf.merge(body, {"logger": {"group": table, "job_type": cell["task"], "tags": tags}})
    config.update(OmegaConf.to_container(merged))
    return config
