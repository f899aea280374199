"""The cell product: a spec's grid blocks -> the table's printed cells and the runs that fill them.

A block crosses datasets x models x pipelines x variants x tasks x methods; each combination is a
printed cell (:class:`TableCell`) filled by one run per seed (:class:`RunCell`). A run cell
(paper, table, dataset, model, pipeline, task, method, variant, seed, scale) says which table asks
for a run; what the run is (its identity) is decided by what it trains (:mod:`src.sweeps.jobs`),
so cells of several tables that ask for the same training share one run.

Two sharing rules follow the papers' tables, which print one FP number per (dataset, model) row
group: an ``fp`` cell is run once per (dataset, model, pipeline) with task ``bw`` (the task does
not change a full-precision network) and fills every task row; and FT cells start from the FP
model the table itself trains (``ft_init: checkpoint``: the E2E ``fp`` run of seed 0, whose
accuracy is then also the FT rows' FP cell) or from the model library's pretrained weights
(``ft_init: pretrained``, transformers; then ``fp`` under FT is a fine-tuning run of its own).
An E2E block with ``kd_teacher: pretrained`` distils its binarized runs from the model library's
pretrained FP network (PC++ §4.3 protocol (4) for the DeiT E2E rows); where the scale has no
pretrained weights (``ft_init: checkpoint``, offline smoke runs) the teacher is the table's own E2E
``fp`` run of seed 0, as for FT starts.
Methods listed under the spec's ``literature`` are numbers quoted from other papers: a printed
cell without runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from src.core.config_tree import pipelines, tasks
from src.core.errors import UserError

CELL_KEYS = ("paper", "table", "dataset", "model", "pipeline", "task", "method", "variant", "seed", "scale")
FT_INITS = ("checkpoint", "pretrained")
KD_TEACHERS = ("pretrained",)
BLOCK_LISTS = ("datasets", "models", "pipelines", "tasks", "methods")


@dataclass(frozen=True)
class TableCell:
    """One printed cell of the table: its row, its method column, the cell key of the runs that
    fill it (``source``, without seed and scale) and, once the plan has identified them, their
    identities (``runs``, one per seed)."""

    row: tuple[str, str, str, str, str]    # dataset, model, pipeline, task, variant
    method: str
    source: tuple | None                   # None: a literature number, shown as published only
    runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunCell:
    """One training run a printed cell needs: its cell, the grid block that asks for it (whose
    overrides it takes), its variant's overrides, and how an FT run starts: from ``parent``
    (the FP run of ``ft_init: checkpoint``) or from pretrained library weights."""

    cell: dict[str, Any]
    block: int
    variant_overrides: tuple[str, ...] = ()
    parent: RunCell | None = None
    pretrained: bool = False
    kd: bool = False                    # an E2E KD student: its teacher is ``parent`` or the pretrained weights


def expand(spec: dict, scale: str, settings: dict, strict: bool = True) -> tuple[list[TableCell], list[RunCell]]:
    """The printed cells of the spec (in table order) and the runs they need (in launch order;
    a run asked for twice is listed twice, the job builder keeps the first)."""
    where = f"{spec['paper']}/{spec['table']}"
    literature = set(spec.get("literature") or [])
    printed: dict[tuple, TableCell] = {}
    runs: list[RunCell] = []
    for index, block in enumerate(spec.get("grid") or []):
        ft_init = _check_block(where, index, block, settings, spec)
        grid = itertools.product(block["datasets"], block["models"], block["pipelines"],
                                 _variants(spec, block, strict), block["tasks"], block["methods"])
        for dataset, model, pipeline, (variant, variant_overrides), task, method in grid:
            row = (dataset, model, pipeline, task, variant)
            if method in literature:
                printed[row + (method,)] = TableCell(row, method, None)
                continue
            run_pipeline, run_task, run_variant, run_overrides = pipeline, task, variant, tuple(variant_overrides)
            if method == "fp":     # one FP network per (dataset, model, pipeline) fills every task row
                run_pipeline = "e2e" if pipeline == "e2e" or ft_init == "checkpoint" else "ft"
                run_task, run_variant, run_overrides = "bw", "", ()
            source = (dataset, model, run_pipeline, run_task, method, run_variant)
            printed[row + (method,)] = TableCell(row, method, source)
            start = ft_init if run_pipeline == "ft" else None
            kd = run_pipeline == "e2e" and method != "fp" and block.get("kd_teacher") is not None
            if kd:  # the teacher: pretrained weights, or the table's FP run where the scale has none
                start = "checkpoint" if settings.get("ft_init") == "checkpoint" else "pretrained"
            for seed in range(_seeds(spec, block, run_pipeline, method, settings)):
                cell = dict(zip(CELL_KEYS, (spec["paper"], spec["table"], *source, seed, scale)))
                parent = RunCell(dict(cell, pipeline="e2e", task="bw", method="fp", variant="", seed=0), index) \
                    if start == "checkpoint" else None
                runs.append(RunCell(cell, index, run_overrides, parent, pretrained=start == "pretrained", kd=kd))
    return list(printed.values()), runs


def _check_block(where: str, index: int, block: dict, settings: dict, spec: dict) -> str:
    """The block's ft_init, after checking its lists, pipelines and tasks."""
    for key in BLOCK_LISTS:
        value = block.get(key)
        if value is not None and not isinstance(value, list):
            raise UserError(f"{where} grid[{index}].{key} must be a list, got {value!r}")
        if not value:
            raise UserError(f"{where}: grid[{index}] needs a non-empty `{key}` list")
    ft_init = settings.get("ft_init") or block.get("ft_init", spec.get("ft_init", "checkpoint"))
    if ft_init not in FT_INITS:
        raise UserError(f"{where}: ft_init {ft_init!r} is not one of {', '.join(FT_INITS)}")
    teacher = block.get("kd_teacher")
    if teacher is not None and (teacher not in KD_TEACHERS or block["pipelines"] != ["e2e"]):
        raise UserError(f"{where}: grid[{index}].kd_teacher {teacher!r} must be one of {', '.join(KD_TEACHERS)}, "
                        f"in a block with pipelines: [e2e] (FT runs distil from their own initial weights)")
    for group, names, valid in (("pipeline", block["pipelines"], pipelines()), ("task", block["tasks"], tasks())):
        for name in names:
            if name not in valid:
                raise UserError(f"{where}: {group} {name!r} is not one of {', '.join(valid)} "
                                f"(configs/{group}/<name>.yaml)")
    return ft_init


def _seeds(spec: dict, block: dict, pipeline: str, method: str, settings: dict) -> int:
    if settings.get("seeds"):
        return int(settings["seeds"])
    method_seeds = {**spec.get("method_seeds", {}), **block.get("method_seeds", {})}
    if method in method_seeds:
        return int(method_seeds[method])
    seeds = block.get("seeds", spec.get("seeds", 1))
    return int(seeds[pipeline] if isinstance(seeds, dict) else seeds)


def _variants(spec: dict, block: dict, strict: bool = True) -> list[tuple[str, list[str]]]:
    """(name, overrides) of the block's variants; [("", [])] when it has none. Protocol variants
    (PC++ Table 5) combine the overrides that ``protocols`` gives for each flag."""
    where = f"{spec['paper']}/{spec['table']}"
    path = f"configs/sweep/{where}.yaml"
    if "protocol_variants" in block:
        protocols = spec.get("protocols") or {}
        out = []
        for name in block["protocol_variants"]:
            overrides = []
            for item in name.split(","):
                key, _, flag = item.partition("=")
                if key not in protocols:
                    raise UserError(f"{where}: protocol {key!r} of variant {name!r} is not "
                                    f"declared under `protocols` ({', '.join(protocols)})")
                wired = (protocols[key] or {}).get(int(flag))
                if wired is None and strict:
                    raise UserError(
                        f"{where}: protocol {key}={flag} has no config override yet (`protocols.{key}.{flag}` "
                        f"is null in {path}); set it to the model/trainer key that switches it")
                overrides += list(wired or [])
            out.append((name, overrides))
        return out
    variants = block.get("variants") or {}
    for key, overrides in variants.items():
        if overrides is None and strict:
            raise UserError(f"{where}: variant {key!r} has no config override yet (null in {path}); "
                            f"set the overrides that select it")
    return [(str(k), list(v or [])) for k, v in variants.items()] or [("", [])]
