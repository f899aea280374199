"""The job builder: the runs of the cell product -> :class:`Job`s (Hydra group choices and value
overrides, FT parent), each named by its identity, and a job as the Hydra experiment config the
launcher writes.

A run's overrides stack, later ones winning: the cell's groups (the scale may stand a small model
in for the paper's), the pipeline's budget, the spec's, the block's, the block's per task, the
spec's per method, the variant's, the scale's and the scale's per dataset. The job's identity
(:func:`src.core.identity.run_id` of the config ``src/train.py`` will resolve, an FT job's parent
counted by its identity) names its run directory, ``<runs root>/<labels>_<id>``: the cells of
every table that ask for the same training share one job and one run, and a rerun finds the same
directory (and resumes or skips it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.core import identity
from src.core.config_tree import CONFIG_DIR, option_file
from src.core.errors import UserError
from src.sweeps import smoke_data
from src.sweeps.cells import RunCell
from src.sweeps.compose import resolved_config, split_extra

# What a run's own ``cell`` node says (its config's groups, seed and scale): the same whichever table
# asks for it. The table cells it fills (paper, table, variant, the paper's model name) are the plan's.
RUN_LABELS = ("dataset", "model", "pipeline", "task", "method", "seed", "scale")


def runs_root(output_root: Path | str) -> Path:
    """One folder for the runs of every sweep: ``<output root>/sweeps/runs``."""
    return Path(output_root).resolve() / "sweeps" / "runs"


@dataclass
class Job:
    """One training run of a sweep, and the table cells it fills."""

    cells: list[dict[str, Any]]        # cells (CELL_KEYS) of the plan's tables that this run fills
    groups: dict[str, str]
    values: list[str]
    parent: str | None = None          # run name of the FP run an FT job starts from (a KD job: its teacher)
    parent_key: str = "pipeline.checkpoint"   # the key that receives the parent's best.pt
    run_id: str = ""
    run_name: str = ""
    experiment_id: str = ""            # identity without the seed: the seeds of one experiment share it
    children: int = 0                  # jobs of the plan that start from this one
    epochs: int = 0
    train_images: int = 0              # per epoch
    gpu_hours: float = 0.0
    shared_with: list[str] = field(default_factory=list)   # other tables that read this run

    @property
    def cell(self) -> dict[str, Any]:
        """The first table cell that asked for this run."""
        return self.cells[0]

    @property
    def labels(self) -> dict[str, Any]:
        """The run's own ``cell`` node: what it trains (group choices), its seed and scale."""
        g = self.groups
        return dict(zip(RUN_LABELS, (g["dataset"], g["model"], g["pipeline"], g["task"], g["quantizer"],
                                     self.cell["seed"], self.cell["scale"])))

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


def cell_name(cell: dict[str, Any]) -> str:
    """A table cell's run as text (the cell's keys, seed and scale): a job's key before it has an
    identity, and what a message names."""
    variant = f"_{slug(cell['variant'])}" if cell["variant"] else ""
    return (f"{cell['paper']}/{cell['table']}:{cell['dataset']}_{cell['model']}_{cell['pipeline']}_{cell['task']}"
            f"_{cell['method']}{variant}_seed{cell['seed']}_{cell['scale']}")


def run_name(labels: dict[str, Any], run_id: str) -> str:
    """``<dataset>_<model>_<pipeline>_<task>_<method>_seed<seed>_<identity>``: readable from what
    the run trains, unique by its identity."""
    return (f"{labels['dataset']}_{labels['model']}_{labels['pipeline']}_{labels['task']}_{labels['method']}"
            f"_seed{labels['seed']}_{run_id}")


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
    choice has its config file (for inspecting a grid whose models are not installed). ``extra``
    are the overrides passed to every run (``reproduce.py ... -- extra``): part of its identity."""

    def __init__(self, spec: dict, settings: dict, output_root: Path | str, strict: bool = True,
                 extra: list[str] | tuple[str, ...] = ()):
        self.spec, self.settings, self.strict = spec, settings, strict
        self.where = f"{spec['paper']}/{spec['table']}"
        self.runs_root = runs_root(output_root)
        self.data_root = Path(output_root).resolve() / "smoke_data"
        self.extra_choices, self.extra_values = split_extra(extra, config_groups())

    def build(self, runs: list[RunCell]) -> list[Job]:
        """One job per distinct table-cell run, the first run of that cell deciding its overrides,
        in the order the runs come; an FT job's parent comes before it. The jobs have no identity
        yet (``parent`` is the parent's :func:`cell_name`): :meth:`identify` gives it."""
        jobs: dict[str, Job] = {}
        for run in runs:
            name = cell_name(run.cell)
            if name in jobs:
                continue
            parent = None
            if run.parent is not None:
                parent = cell_name(run.parent.cell)
                if parent not in jobs:
                    jobs[parent] = self.job(run.parent)
            jobs[name] = self.job(run, parent)
        return list(jobs.values())

    def job(self, run: RunCell, parent: str | None = None) -> Job:
        epochs, overrides = _overrides(self.spec, self.settings, run, self.data_root)
        groups, values = split_overrides(overrides)
        if self.strict:
            for group, option in groups.items():
                _check_option(group, option, self.where)
        if run.kd:
            values.append("model.protocol.kd=true")  # teacher: kd_teacher=<parent>, else the pretrained weights
        elif run.pretrained:
            values.append("pipeline.pretrained=true")
        values += [f"seed={run.cell['seed']}", f"trainer.max_epochs={epochs}"]
        return Job(cells=[run.cell], groups=groups, values=values, parent=parent, epochs=epochs,
                   parent_key="model.protocol.kd_teacher" if run.kd else "pipeline.checkpoint")

    def identify(self, jobs: list[Job]) -> list[Job]:
        """Give each job (parents first) its identity and run name, an FT job the checkpoint of
        its parent's run directory, and merge the jobs of one identity into the first (the cells
        of the later ones join it). Counts each job's children."""
        by_key: dict[str, Job] = {}
        out: dict[str, Job] = {}
        for job in jobs:
            key = cell_name(job.cell)
            if job.parent is not None:
                parent = by_key[job.parent]
                job.parent = parent.run_name
                job.values.append(f"{job.parent_key}={self.runs_root / parent.run_name / 'checkpoints' / 'best.pt'}")
            choices = [f"{g}={o}" for g, o in job.groups.items()] + list(self.extra_choices)
            config = resolved_config(choices, job.values, self.extra_values)
            job.run_id = identity.run_id(config)
            job.experiment_id = identity.run_id({**config, "seed": None})
            job.run_name = run_name(job.labels, job.run_id)
            if job.run_id in out:
                out[job.run_id].cells += [c for c in job.cells if c not in out[job.run_id].cells]
            else:
                out[job.run_id] = job
            by_key[key] = out[job.run_id]
        children = Counter(j.parent for j in out.values() if j.parent)
        for job in out.values():
            job.children = children[job.run_name]
        return list(out.values())


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
    if settings.get("fabricate_data") and dataset in smoke_data.FABRICATED:  # digits ship with scikit-learn
        overrides.append(f"dataset.splits.root={smoke_data.dataset_root(data_root, dataset)}")
    return epochs, overrides


def _check_option(group: str, option: str, where: str) -> None:
    try:
        option_file(group, option)
    except ValueError as exc:
        raise UserError(f"{where}: {exc} (configs/{group}/<name>.yaml)") from None


def job_config(job: Job) -> dict[str, Any]:
    """The job as a Hydra experiment config (``# @package _global_``): group choices in its
    defaults list, values as a nested mapping, its identity, its labels as ``cell``, and wandb's
    group (the seeds of one experiment), job_type (the task) and tags (the labels). Nothing in it
    depends on the table that writes it: a run shared by two tables gets one file."""
    body = OmegaConf.to_container(OmegaConf.from_dotlist(job.values)) if job.values else {}
    labels = job.labels
    config = {
        "defaults": [{f"override /{g}": o} for g, o in job.groups.items()],
        "run_name": job.run_name, "run_id": job.run_id, "cell": labels,
    }
    group = f"{labels['dataset']}_{labels['model']}_{labels['pipeline']}_{labels['task']}_{labels['method']}"
    logger = {"group": f"{group}_{job.experiment_id}", "job_type": labels["task"],
              "tags": [f"{k}:{v}" for k, v in labels.items()]}
    config.update(OmegaConf.to_container(OmegaConf.merge(body, {"logger": logger})))
    return config
