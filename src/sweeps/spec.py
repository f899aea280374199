"""Experiment specs of the paper sweeps: ``configs/experiment/<paper>/<table>.yaml`` -> jobs.

A spec declares a table's grid as blocks (datasets x models x pipelines x tasks x methods
[x variants]) and its published budget (epochs and overrides per pipeline) and seed counts; the
``scale`` knob (``configs/reproduce/scales.yaml``: paper | mini | smoke) replaces budget, seeds,
data and models. Every job carries its *cell* (paper, table, dataset, model, pipeline, task,
method, variant, seed, scale) in its config, and its run name is a function of the cell, so a
rerun finds the same directory (and resumes or skips it).

Two sharing rules follow the papers' tables, which print one FP number per (dataset, model) row
group: an ``fp`` cell is run once per (dataset, model, pipeline) with task ``bw`` (the task does
not change a full-precision network) and fills every task row; and FT cells start from the FP
model the table itself trains (``ft_init: checkpoint``: the E2E ``fp`` run of seed 0, whose
accuracy is then also the FT rows' FP cell) or from the model library's pretrained weights
(``ft_init: pretrained``, transformers; then ``fp`` under FT is a fine-tuning run of its own).
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.core.errors import UserError
from src.reporting.paper import LITERATURE_METHODS, PIPELINES, TASKS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
EXPERIMENTS = CONFIGS / "experiment"
SCALES_FILE = CONFIGS / "reproduce" / "scales.yaml"
COST_FILE = CONFIGS / "reproduce" / "cost.yaml"
SCALES = ("paper", "mini", "smoke")
CELL_KEYS = ("paper", "table", "dataset", "model", "pipeline", "task", "method", "variant", "seed", "scale")
# Config groups of configs/train.yaml: an override `group=option` selects an option file.
GROUPS = ("dataset", "model", "quantizer", "pipeline", "task", "optimizer", "scheduler", "trainer", "logger")
FT_INITS = ("checkpoint", "pretrained")


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


@dataclass
class TableCell:
    """One printed cell of the table: its row, its method column, and the cell key of the runs
    that fill it (``source``, without seed and scale)."""

    row: tuple[str, str, str, str, str]    # dataset, model, pipeline, task, variant
    method: str
    source: tuple | None                   # None: a literature number, shown as published only


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


def list_specs() -> list[str]:
    return sorted(f"{p.parent.name}/{p.stem}" for p in EXPERIMENTS.glob("*/*.yaml") if not p.stem.startswith("_"))


def load_spec(table: str) -> dict[str, Any]:
    path = EXPERIMENTS / f"{table}.yaml"
    if not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9_]+", table or "") or not path.is_file():
        raise UserError(f"unknown experiment {table!r}; the paper sweeps are: {', '.join(list_specs())} "
                        f"(configs/experiment/<paper>/<table>.yaml)")
    spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    spec.setdefault("paper", table.split("/")[0])
    spec.setdefault("table", table.split("/")[1])
    return spec


def load_scale(scale: str) -> dict[str, Any]:
    scales = OmegaConf.to_container(OmegaConf.load(SCALES_FILE), resolve=True)
    if scale not in scales:
        raise UserError(f"scale={scale!r} is not one of {', '.join(scales)}")
    return scales[scale]


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
        if key in GROUPS:
            groups[key] = value
        else:
            values.append(item)
    return groups, values


def _as_list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserError(f"{what} must be a list, got {value!r}")
    return value


def _seeds(spec: dict, block: dict, pipeline: str, method: str, scale: dict) -> int:
    if scale.get("seeds"):
        return int(scale["seeds"])
    method_seeds = {**spec.get("method_seeds", {}), **block.get("method_seeds", {})}
    if method in method_seeds:
        return int(method_seeds[method])
    seeds = block.get("seeds", spec.get("seeds", 1))
    return int(seeds[pipeline] if isinstance(seeds, dict) else seeds)


def _variants(spec: dict, block: dict, strict: bool = True) -> list[tuple[str, list[str]]]:
    """(name, overrides) of the block's variants; [("", [])] when it has none. Protocol variants
    (PC++ Table 5) combine the overrides that ``protocols`` gives for each flag."""
    if "protocol_variants" in block:
        protocols = spec.get("protocols") or {}
        out = []
        for name in block["protocol_variants"]:
            overrides = []
            for item in name.split(","):
                key, _, flag = item.partition("=")
                if key not in protocols:
                    raise UserError(f"{spec['paper']}/{spec['table']}: protocol {key!r} of variant {name!r} is not "
                                    f"declared under `protocols` ({', '.join(protocols)})")
                wired = (protocols[key] or {}).get(int(flag))
                if wired is None and not strict:
                    wired = []
                if wired is None:
                    raise UserError(
                        f"{spec['paper']}/{spec['table']}: protocol {key}={flag} has no config override yet "
                        f"(`protocols.{key}.{flag}` is null in configs/experiment/{spec['paper']}/{spec['table']}.yaml); "
                        f"set it to the model/trainer key that switches it")
                overrides += list(wired)
            out.append((name, overrides))
        return out
    variants = block.get("variants") or {}
    for key, overrides in variants.items():
        if overrides is None and strict:
            raise UserError(f"{spec['paper']}/{spec['table']}: variant {key!r} has no config override yet (null in "
                            f"configs/experiment/{spec['paper']}/{spec['table']}.yaml); set the overrides that select it")
    return [(str(k), list(v or [])) for k, v in variants.items()] or [("", [])]


@lru_cache(maxsize=None)
def _dataset_defaults(name: str) -> dict:
    path = CONFIGS / "dataset" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"dataset {name!r} has no config (configs/dataset/{name}.yaml)")
    return OmegaConf.to_container(OmegaConf.load(path))


def _check_option(group: str, option: str, where: str) -> None:
    if not _has_option(group, option):
        options = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
        raise UserError(f"{where}: {group} {option!r} has no config (configs/{group}/{option}.yaml); "
                        f"available: {', '.join(options)}")


@lru_cache(maxsize=None)
def _has_option(group: str, option: str) -> bool:
    return (CONFIGS / group / f"{option}.yaml").is_file()


def _value(values: list[str], key: str, default: Any) -> Any:
    for item in reversed(values):
        k, _, v = item.partition("=")
        if k == key:
            return v
    return default


def plan(table: str, scale: str = "paper", output_root: Path | str = "outputs",
         only: dict[str, list[str]] | None = None, tflops: float | None = None, strict: bool = True) -> Plan:
    """Expand a spec at a scale into jobs (with dependencies and estimated cost) and table cells.
    ``strict=False`` skips the checks that config files and variant overrides exist (for
    inspecting a grid whose models are not installed)."""
    if scale not in SCALES:
        raise UserError(f"scale={scale!r} is not one of {', '.join(SCALES)}")
    spec, sc = load_spec(table), load_scale(scale)
    cost = OmegaConf.to_container(OmegaConf.load(COST_FILE))
    tflops = float(tflops or cost["tflops"])
    paper, name = spec["paper"], spec["table"]
    where = f"{paper}/{name}"
    out = Plan(table=where, scale=scale, spec=spec, metric=spec.get("metric", "final_test_acc"),
               kind=spec.get("kind", "table"))
    run_root = Path(output_root).resolve() / "multirun" / paper / name
    data_root = Path(output_root).resolve() / "smoke_data"
    jobs: dict[str, Job] = {}
    default_init = sc.get("ft_init") or spec.get("ft_init", "checkpoint")

    def budget(pipeline: str) -> tuple[int, list[str]]:
        b = (spec.get("budget") or {}).get(pipeline)
        if b is None:
            raise UserError(f"{where}: no budget for pipeline {pipeline!r} (budget.{pipeline}.epochs)")
        epochs = int((sc.get("epochs") or {}).get(pipeline) or b["epochs"])
        return epochs, list(b.get("overrides") or [])

    def add_job(block: dict, dataset: str, model: str, pipeline: str, task: str, method: str, variant: str,
                variant_overrides: list[str], seed: int, ft_init: str) -> Job:
        cell = dict(paper=paper, table=name, dataset=dataset, model=model, pipeline=pipeline, task=task,
                    method=method, variant=variant, seed=seed, scale=scale)
        rn = run_name(cell)
        if rn in jobs:
            return jobs[rn]
        epochs, budget_overrides = budget(pipeline)
        run_model = (sc.get("models") or {}).get(model, model)
        overrides = [f"dataset={dataset}", f"model={run_model}", f"quantizer={method}", f"pipeline={pipeline}",
                     f"task={task}", *budget_overrides, *(spec.get("overrides") or []),
                     *(block.get("overrides") or []), *((block.get("task_overrides") or {}).get(task) or []),
                     *((spec.get("method_overrides") or {}).get(method) or []), *variant_overrides,
                     *(sc.get("overrides") or []), *((sc.get("dataset_overrides") or {}).get(dataset) or [])]
        if sc.get("fabricate_data"):
            overrides.append(f"dataset.splits.root={data_root / 'imagenet' if dataset == 'imagenet' else data_root}")
        groups, values = split_overrides(overrides)
        for group, option in groups.items():
            if strict:
                _check_option(group, option, where)
        parent = None
        if pipeline == "ft":
            if ft_init == "pretrained":
                values.append("pipeline.pretrained=true")
            else:
                parent_job = add_job(block, dataset, model, "e2e", "bw", "fp", "", [], 0, ft_init)
                parent_job.children += 1
                parent = parent_job.run_name
                values.append(f"pipeline.checkpoint={run_root / parent / 'checkpoints' / 'best.pt'}")
        values.append(f"trainer.max_epochs={epochs}")
        ds = _dataset_defaults(groups["dataset"])
        n_train = int(_value(values, "dataset.splits.train_subset", None) or cost["train_images"].get(dataset, 50000))
        if sc.get("fabricate_data"):
            n_train = 16 if dataset == "imagenet" else 20
        batch = int(_value(values, "dataset.batch_size", ds["batch_size"]))
        steps = _value(values, "trainer.max_steps_per_epoch", None)
        images = min(n_train, int(steps) * batch) if steps not in (None, "null") else n_train
        gflops = float(cost["gflops"].get(run_model, cost["gflops"].get(model, 1.0)))
        job = Job(cell=cell, run_name=rn, groups=groups, values=values, parent=parent, epochs=epochs,
                  train_images=images,
                  gpu_hours=max(3 * gflops * 1e9 / (tflops * 1e12), 1 / float(cost["max_images_per_s"]))
                  * images * epochs / 3600)
        jobs[rn] = job
        return job

    cells: dict[tuple, TableCell] = {}
    for i, block in enumerate(spec.get("grid") or []):
        for key in ("datasets", "models", "pipelines", "tasks", "methods"):
            if not _as_list(block.get(key), f"{where} grid[{i}].{key}"):
                raise UserError(f"{where}: grid[{i}] needs a non-empty `{key}` list")
        ft_init = sc.get("ft_init") or block.get("ft_init", default_init)
        if ft_init not in FT_INITS:
            raise UserError(f"{where}: ft_init {ft_init!r} is not one of {', '.join(FT_INITS)}")
        for dataset in block["datasets"]:
            for model in block["models"]:
                for pipeline in block["pipelines"]:
                    if pipeline not in PIPELINES:
                        raise UserError(f"{where}: pipeline {pipeline!r} is not one of {', '.join(PIPELINES)}")
                    for variant, v_over in _variants(spec, block, strict):
                        for task in block["tasks"]:
                            if task not in TASKS:
                                raise UserError(f"{where}: task {task!r} is not one of {', '.join(TASKS)}")
                            for method in block["methods"]:
                                row = (dataset, model, pipeline, task, variant)
                                if method in LITERATURE_METHODS:
                                    cells[row + (method,)] = TableCell(row, method, None)
                                    continue
                                if method == "fp":
                                    # one FP network per (dataset, model, pipeline) fills every task row
                                    src_pipe = "e2e" if pipeline == "e2e" or ft_init == "checkpoint" else "ft"
                                    n = _seeds(spec, block, src_pipe, "fp", sc)
                                    for seed in range(n):
                                        add_job(block, dataset, model, src_pipe, "bw", "fp", "", [], seed, ft_init)
                                    cells[row + (method,)] = TableCell(row, method, (dataset, model, src_pipe, "bw", "fp", ""))
                                    continue
                                for seed in range(_seeds(spec, block, pipeline, method, sc)):
                                    add_job(block, dataset, model, pipeline, task, method, variant, v_over, seed, ft_init)
                                cells[row + (method,)] = TableCell(row, method, (dataset, model, pipeline, task, method, variant))
    out.cells = list(cells.values())
    selected = list(jobs.values())
    if only:
        keep = {j.run_name for j in selected if all(str(j.cell[k]) in v for k, v in only.items())}
        keep |= {j.parent for j in selected if j.run_name in keep and j.parent}   # a kept FT cell needs its FP run
        selected = [j for j in selected if j.run_name in keep]
        out.cells = [c for c in out.cells if _cell_selected(c, only)]
    out.jobs = sorted(selected, key=lambda j: j.stage)
    return out


def _cell_selected(cell: TableCell, only: dict[str, list[str]]) -> bool:
    keys = dict(zip(("dataset", "model", "pipeline", "task", "variant"), cell.row), method=cell.method)
    return all(keys[k] in v for k, v in only.items() if k in keys)


def job_config(job: Job, plan_: Plan) -> dict[str, Any]:
    """The job as a Hydra experiment config (``# @package _global_``): group choices in its
    defaults list, values as a nested mapping, its cell, and wandb's group/job_type/tags."""
    body = OmegaConf.to_container(OmegaConf.from_dotlist(job.values)) if job.values else {}
    cell = job.cell
    tags = [f"{k}:{cell[k]}" for k in CELL_KEYS if cell[k] != ""]
    config = {
        "defaults": [{f"override /{g}": o} for g, o in job.groups.items()],
        "experiment_name": plan_.table, "run_name": job.run_name, "seed": cell["seed"], "cell": dict(cell),
    }
    merged = OmegaConf.merge(body, {"logger": {"group": plan_.table, "job_type": cell["task"], "tags": tags}})
    config.update(OmegaConf.to_container(merged))
    return config
