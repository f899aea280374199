"""A sweep's plan: grids that match the published tables, seeds, budgets, FT dependencies, runs
named by their identity and shared across tables, the recipes the specs pin (Table 2's one FP
network, ConQ's), cost estimates, scales, --only, clear errors for bad input, and the plans of
every spec pinned."""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_train
from src.core.errors import UserError
from src.reporting.layout import build_grid
from src.reporting.paper import LITERATURE_METHODS, TABLES, load_published
from src.sweeps import cells, jobs, spec, spec_files
from src.sweeps.compose import resolved_config

PIN_ROOT = "/proxbin-pin/outputs"     # plan() only builds paths from the output root; nothing is written


@lru_cache(maxsize=None)
def planned(table: str, scale: str = "paper") -> spec.Plan:
    """Plans shared by the tests of this module (composing every job's config costs ~0.1 s per
    distinct choice of config groups). Tests must not change them."""
    return spec.plan(table, scale, PIN_ROOT)


def expanded(table: str, scale: str = "paper"):
    spec_ = spec_files.load_spec(table)
    return cells.expand(spec_, scale, spec_files.load_scale(scale), strict=False)


@pytest.mark.parametrize("table", TABLES)
def test_grid_is_the_published_table(table):
    """Every printed accuracy of the paper is a cell of the sweep, and the sweep has no cell the
    paper does not print (rows x method columns, protocol variants included)."""
    printed, _ = expanded(table)
    ours = {c.row + (c.method,) for c in printed}
    published = {(c.dataset, c.model, c.pipeline, c.task, c.note if c.protocols else "", c.method)
                 for c in load_published(table) if c.statistic == "acc"}
    assert ours == published
    for cell in printed:
        assert (cell.source is None) == (cell.method in LITERATURE_METHODS)


def test_every_spec_is_listed_builds_its_jobs_and_lays_out_its_table():
    names = spec_files.list_specs()
    assert set(TABLES) < set(names)
    assert {"pcpp/fig2", "pcpp/fig3", "pcpp/accum_bits"} < set(names)
    for name in names:
        spec_, settings = spec_files.load_spec(name), spec_files.load_scale("paper")
        printed, runs = cells.expand(spec_, "paper", settings)
        assert jobs.JobBuilder(spec_, settings, PIN_ROOT).build(runs) and printed
        grid = build_grid(spec_, printed, lambda c: "x")
        assert sum(r.count("x") for r in grid.rows) == len(printed)     # every cell printed once


def test_pcpp_table2_seeds_budget_one_fp_network_and_ft_parents():
    plan = planned("pcpp/table2")
    seeds = Counter((j.cell["dataset"], j.cell["pipeline"], j.cell["task"], j.cell["method"]) for j in plan.jobs)
    assert seeds[("cifar10", "e2e", "bw", "bnnpp")] == 5          # "the mean of five runs"
    assert seeds[("cifar10", "ft", "bwaa", "pq")] == 3            # not stated: 3
    assert seeds[("cifar10", "e2e", "bw", "fp")] == 5             # one FP network per (dataset, model) ...
    assert not any(j.cell["method"] == "fp" and (j.cell["task"] != "bw" or j.cell["pipeline"] == "ft")
                   for j in plan.jobs)                           # ... fills every pipeline/task row
    assert len(plan.jobs) == len({j.run_id for j in plan.jobs}) == 2 * (5 + 7 * 3 * 3 + 7 * 2 * 5)
    for job in plan.jobs:
        assert job.run_name == jobs.run_name(job.labels, job.run_id)
        assert job.epochs == {"e2e": 300, "ft": 100}[job.cell["pipeline"]]
        # one network per dataset: its FP parent and every BW/BWA/BWAA child use hardtanh
        assert "model.net.activation=hardtanh" in job.values
        if job.cell["pipeline"] == "ft":
            parent = plan.job(job.parent)
            assert parent.cell | {"seed": 0} == parent.cell and parent.cell["method"] == "fp"
            assert parent.cell["pipeline"] == "e2e" and parent.cell["dataset"] == job.cell["dataset"]
            want = Path(PIN_ROOT) / "sweeps" / "runs" / parent.run_name / "checkpoints" / "best.pt"
            assert f"pipeline.checkpoint={want}" in job.values
            assert job.stage == 1 and parent.stage == 0
    imagenet = next(j for j in plan.jobs if j.cell["dataset"] == "imagenet" and j.cell["pipeline"] == "e2e"
                    and j.cell["task"] == "bw" and j.cell["method"] == "bnnpp" and j.cell["seed"] == 0)
    assert imagenet.groups == {"dataset": "imagenet", "model": "resnet50", "quantizer": "bnnpp", "pipeline": "e2e",
                               "task": "bw", "optimizer": "sgd", "scheduler": "cosine"}
    # FLOP-bound: 3 x 4.1 GFLOPs x 1,281,167 images x 300 epochs at 30 TFLOP/s; ResNet-20 is rate-bound
    assert imagenet.gpu_hours == pytest.approx(3 * 4.1e9 * 1281167 * 300 / 30e12 / 3600)
    cifar = next(j for j in plan.jobs if j.labels == {"dataset": "cifar10", "model": "resnet20", "pipeline": "e2e",
                                                      "task": "bw", "method": "pc", "seed": 0, "scale": "paper"})
    assert cifar.gpu_hours == pytest.approx(50000 * 300 / 10000 / 3600)
    # the FT rows' FP cell is the E2E FP network its children start from
    fp_ft = next(c for c in plan.cells if c.method == "fp" and c.row[:4] == ("cifar10", "resnet20", "ft", "bwa"))
    parents = {j.parent for j in plan.jobs if j.cell["dataset"] == "cifar10" and j.parent}
    assert len(fp_ft.runs) == 5 and {plan.job(p).run_id for p in parents} == {fp_ft.runs[0]}


def test_table7_reads_table2s_runs_and_plan_many_counts_each_run_once():
    """PC++ Table 7 prints the error bars of Table 2's E2E rows: the same runs, not a second set."""
    table2, table7 = planned("pcpp/table2"), planned("pcpp/table7")
    e2e = {j.run_id for j in table2.jobs if j.cell["pipeline"] == "e2e"}
    assert {j.run_id for j in table7.jobs} == e2e
    assert {i for c in table7.cells for i in c.runs} == e2e
    plans = spec.plan_many(["pcpp/table2", "pcpp/table7"], "smoke", PIN_ROOT)
    by_table = {p.table: p for p in plans}
    assert all(j.shared_with == ["pcpp/table2"] for j in by_table["pcpp/table7"].jobs)
    shared = [j for j in by_table["pcpp/table2"].jobs if j.shared_with]
    assert len(shared) == len(by_table["pcpp/table7"].jobs) == 2 * (1 + 7 * 2)   # one FP network per dataset
    assert all(j.cell["pipeline"] == "e2e" for j in shared)
    assert len({j.run_id for p in plans for j in p.jobs}) == len(by_table["pcpp/table2"].jobs)


def test_find_shared_names_the_other_tables_that_read_a_run():
    plan = spec.plan("pcpp/table7", "smoke", PIN_ROOT, only={"dataset": ["cifar10"], "method": ["fp", "bnnpp"]})
    spec.find_shared(plan, PIN_ROOT)
    assert not plan.unchecked
    by_cell = {(j.cell["task"], j.cell["method"]): j.shared_with for j in plan.jobs}
    # the FP network (seed 0) is also the parent of Table 2's FT rows and of the accumulator study
    assert by_cell[("bw", "fp")] == ["pcpp/accum_bits", "pcpp/table2"]
    assert by_cell[("bw", "bnnpp")] == by_cell[("bwa", "bnnpp")] == ["pcpp/table2"]


def test_conq_seeds_metric_and_recipe():
    """ConQ §5.1: Adam 0.01 with BinaryConnect's exponential decay, ProxQuant's procedure (every
    conv and the fc binarized, 1x1 shortcut convs kept in full precision), 200 + 300 epochs."""
    plan = planned("conq/table1")
    seeds = Counter((j.cell["model"], j.cell["method"]) for j in plan.jobs)
    assert seeds[("resnet56", "conq")] == 10 and seeds[("resnet56", "proxquant")] == 4
    assert seeds[("resnet56", "proxgen")] == 1 and seeds[("resnet56", "fp")] == 1
    assert plan.metric == "best_test_acc"
    assert {j.epochs for j in plan.jobs if j.cell["pipeline"] == "ft"} == {300}     # 200 prox + 100 frozen
    assert {j.epochs for j in plan.jobs if j.cell["pipeline"] == "e2e"} == {200}
    for job in plan.jobs:
        assert job.groups["optimizer"] == "adam" and job.groups["scheduler"] == "exponential"
        assert "model.net.shortcut=B" in job.values and "task.keep_fp=['*shortcut*']" in job.values
    # BinaryConnect's decay over each stage: the lr ends at lr x 2e-6/3e-3 (cifar10.py's LR_fin/LR_start)
    for job in (plan.jobs[0], plan.jobs[-1]):
        config = resolved_config([f"{g}={o}" for g, o in job.groups.items()], job.values)
        optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=config["optimizer"]["lr"])
        scheduler = instantiate(config["scheduler"])(optimizer)
        for _ in range(job.epochs):
            optimizer.step()
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 2e-6 / 3e-3)
    table2 = planned("conq/table2")
    assert {j.run_id for j in table2.jobs if j.cell["model"] == "resnet20"} == \
        {j.run_id for j in plan.jobs if j.cell["model"] == "resnet20"}     # ConQ Table 2's ResNet20 rows: Table 1's runs
    vgg = [j for j in table2.jobs if j.cell["model"] == "vgg_small"]
    assert vgg and all("task.keep_fp=[]" in j.values for j in vgg)


def test_scales_replace_budget_seeds_data_and_models():
    paper, mini, smoke = planned("pcpp/table2"), planned("pcpp/table2", "mini"), planned("pcpp/table2", "smoke")
    assert {c.row + (c.method,) for c in smoke.cells} == {c.row + (c.method,) for c in paper.cells}
    assert all(j.cell["seed"] == 0 for j in mini.jobs + smoke.jobs)
    assert {j.epochs for j in mini.jobs} == {10, 5}
    assert all("dataset.splits.train_subset=5000" in j.values for j in mini.jobs if j.cell["dataset"] == "cifar10")
    job = next(j for j in smoke.jobs if j.cell["model"] == "resnet50" and j.cell["task"] == "bwaa"
               and j.cell["method"] == "bnnpp")
    assert job.groups["model"] == "resnet20" and job.cell["model"] == "resnet50"   # stand-in, cell keeps the name
    assert f"dataset.splits.root={Path(PIN_ROOT) / 'smoke_data' / 'imagenet'}" in job.values
    assert "trainer.max_steps_per_epoch=1" in job.values and "dataset.num_classes=4" in job.values
    ids = {j.run_id for j in paper.jobs} | {j.run_id for j in mini.jobs} | {j.run_id for j in smoke.jobs}
    assert len(ids) == len(paper.jobs) + len(mini.jobs) + len(smoke.jobs)   # scales never share a run


def test_only_keeps_the_fp_run_a_kept_ft_run_needs():
    plan = spec.plan("conq/table1", "paper", PIN_ROOT, only={"model": ["resnet32"], "method": ["conq"]})
    assert [j.cell["method"] for j in plan.jobs] == ["fp"] + ["conq"] * 10
    assert plan.jobs[0].cell["model"] == "resnet32" and [c.method for c in plan.cells] == ["conq"]
    assert {j.run_id for j in plan.jobs} < {j.run_id for j in planned("conq/table1").jobs}


def test_extra_overrides_are_part_of_a_runs_identity():
    only = {"model": ["resnet20"], "method": ["conq"], "seed": ["0"]}
    base = spec.plan("conq/table1", "smoke", PIN_ROOT, only=only)
    located = spec.plan("conq/table1", "smoke", PIN_ROOT, only=only, extra=["trainer.device=cuda", "logger=wandb"])
    changed = spec.plan("conq/table1", "smoke", PIN_ROOT, only=only, extra=["optimizer.lr=0.05"])
    ids = [[j.run_id for j in p.jobs] for p in (base, located, changed)]
    assert ids[0] == ids[1] and not set(ids[0]) & set(ids[2])     # a new lr: new parent, new children


def _job(table: str, **labels):
    """The paper-scale job of ``table`` that fills a cell with ``labels`` (dataset, model, pipeline,
    task, method, variant, seed)."""
    jobs = [j for j in spec.plan(table, "paper").jobs
            if any(all(str(c.get(k)) == str(v) for k, v in labels.items()) for c in j.cells)]
    assert len(jobs) == 1, (table, labels, [j.run_name for j in jobs])
    return jobs[0]


def _composed(job) -> dict:
    return OmegaConf.to_container(compose_train([f"{g}={o}" for g, o in job.groups.items()] + job.values), resolve=True)


@pytest.mark.slow
def test_transformer_tables_apply_the_four_protocols_and_deit_recipe():
    """PC++ §4.3 "we apply four protocols": Table 5's all-on variant is the very run of Table 3's ViT-B
    CIFAR-10 cell (same identity, same composed config); (3) pre-train is for fine-tuning only; every
    run trains with DeiT's recipe (configs/*/deit.yaml)."""
    cell = dict(dataset="cifar10", model="vit_b16", pipeline="ft", task="bw", method="bnnpp", seed=0)
    job3 = _job("pcpp/table3", **cell)
    job5 = _job("pcpp/table5", **cell, variant="scaling=1,normalization=1,pretrain=1,kd=1")
    table3 = _composed(job3)
    assert job5.run_id == job3.run_id and table3 == _composed(job5)
    assert {k: table3["model"]["protocol"][k] for k in ("scaling", "normalization", "pretrain", "kd")} == \
        dict.fromkeys(("scaling", "normalization", "pretrain", "kd"), True)
    e2e = _composed(_job("pcpp/table3", dataset="imagenet", model="deit_t", pipeline="e2e", task="bw",
                         method="bnnpp", seed=0))
    assert not e2e["model"]["protocol"]["pretrain"] and e2e["model"]["net"]["drop_path_rate"] == 0.1
    imagenet_vit = _composed(_job("pcpp/table3", dataset="imagenet", model="vit_b16", pipeline="ft", task="bw",
                                  method="pc", seed=0))
    assert imagenet_vit["model"]["net"]["arch"] == "vit_base_patch16_224.augreg_in21k"    # footnote 5
    for config in (table3, e2e):
        assert config["trainer"]["mixup"]["_target_"] == "timm.data.Mixup"
        assert config["dataset"]["splits"]["train_transform"]["auto_augment"] == "rand-m9-mstd0.5-inc1"
        assert config["scheduler"]["scheduler"]["_target_"] == "timm.scheduler.CosineLRScheduler"


BAD_SPEC = """
paper: pcpp
table: bad
budget: {e2e: {epochs: 3}}
grid:
  - {datasets: [cifar10], models: [resnet20], pipelines: [e2e], tasks: [bw], methods: [bnnpp, nosuch]}
"""


@pytest.mark.parametrize("table, scale, message", [
    ("pcpp/table99", "paper", "unknown sweep spec 'pcpp/table99'; the paper sweeps are: conq/table1"),
    ("pcpp/table2", "huge", "scale='huge' is not one of paper, mini, smoke"),
    ("pcpp/bad", "paper", "pcpp/bad: quantizer='nosuch' is not an option; valid: bc, "),
    # a literature column must be declared as such, or it is taken for one of our methods
    ("pcpp/lit", "paper", "pcpp/lit: quantizer='bivit' is not an option; valid: bc, "),
])
def test_bad_input_is_a_user_error(tmp_path, monkeypatch, table, scale, message):
    (tmp_path / "pcpp").mkdir()
    (tmp_path / "pcpp" / "bad.yaml").write_text(BAD_SPEC)
    (tmp_path / "pcpp" / "lit.yaml").write_text(BAD_SPEC.replace("nosuch", "bivit").replace("table: bad", "table: lit"))
    (tmp_path / "conq").mkdir()
    (tmp_path / "conq" / "table1.yaml").write_text(BAD_SPEC)
    monkeypatch.setattr(spec_files, "SWEEP_DIR", tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec.plan(table, scale)


# --- Regression pin: the plans of every spec at every scale ---------------------------------------

PIN_FILE = Path(__file__).with_name("plans.json")


def pin_record(plan: spec.Plan) -> dict:
    """What a plan decides, in the fixture's form: per job (in launch order) its run name, its
    effective overrides (group choices as ``/group=option``, then values, a key given twice counting
    once with its last value, sorted; overrides every job of the plan shares are listed once under
    ``common``; ``<runs>`` is the runs folder), its FT parent, epochs, images per epoch, GPU-hours
    and the table cells it fills; and the printed table cells with the runs that fill them. Run
    identities are written ``#0``, ``#1``, ... in order of first appearance: the pin holds which
    jobs are one run and who starts from whom, not hashes that change with every config default."""
    symbols: dict[str, str] = {}
    for job in plan.jobs:
        symbols.setdefault(job.run_id, f"#{len(symbols)}")

    def named(text: str) -> str:
        for run_id, symbol in symbols.items():
            text = text.replace(run_id, symbol)
        return text

    effective = []
    for job in plan.jobs:
        last: dict[str, str] = {}
        for item in [f"/{g}={o}" for g, o in job.groups.items()] + list(job.values):
            key, _, value = item.partition("=")
            last.pop(key, None)
            last[key] = named(value.replace(f"{PIN_ROOT}/sweeps/runs/", "<runs>/").replace(PIN_ROOT, "<out>"))
        effective.append(sorted(f"{k}={v}" for k, v in last.items()))
    common = sorted(set.intersection(*map(set, effective))) if effective else []
    return {
        "metric": plan.metric, "kind": plan.kind, "common": common,
        "jobs": [[named(j.run_name), [o for o in e if o not in common], j.parent and named(j.parent), j.epochs,
                  j.train_images, j.gpu_hours, [jobs.cell_name(c) for c in j.cells]]
                 for j, e in zip(plan.jobs, effective)],
        "cells": [[*c.row, c.method, None if c.source is None else list(c.source), [symbols[i] for i in c.runs]]
                  for c in plan.cells],
    }


PIN_ONLY = {  # a few --only selections (they keep the FP runs that kept FT runs start from)
    "conq/table1 paper only=model:resnet32,method:conq": (
        "conq/table1", "paper", {"model": ["resnet32"], "method": ["conq"]}),
    "pcpp/table2 mini only=task:bwaa,seed:0": ("pcpp/table2", "mini", {"task": ["bwaa"], "seed": ["0"]}),
    "pcpp/table5 smoke only=variant:s1n1p1k0": (
        "pcpp/table5", "smoke", {"variant": ["scaling=1,normalization=1,pretrain=1,kd=0"]}),
    "pcpp/table3 paper only=dataset:cifar100,pipeline:ft": (
        "pcpp/table3", "paper", {"dataset": ["cifar100"], "pipeline": ["ft"]}),
}

FAST_PINS = ("conq/table1 paper only=model:resnet32,method:conq", "pcpp/table5 smoke only=variant:s1n1p1k0",
             "conq/table2 smoke", "pcpp/table7 smoke", "pcpp/appE paper")


def pinned_plan(key: str) -> dict:
    if key in PIN_ONLY:
        table, scale, only = PIN_ONLY[key]
        return pin_record(spec.plan(table, scale, PIN_ROOT, only=only))
    table, scale = key.split()
    return pin_record(planned(table, scale))


def pin_keys() -> list[str]:
    return [f"{t} {s}" for t in spec_files.list_specs() for s in spec_files.scales()] + list(PIN_ONLY)


def pinned_plans() -> dict[str, dict]:
    """Every spec x scale (strict) and the --only selections above, as :func:`pin_record`s."""
    return {key: pinned_plan(key) for key in pin_keys()}


def check_pin(key: str, want: dict) -> None:
    have = pinned_plan(key)
    assert {k: have[k] for k in ("metric", "kind", "common")} == {k: want[k] for k in ("metric", "kind", "common")}, key
    assert [j[0] for j in have["jobs"]] == [j[0] for j in want["jobs"]], f"{key}: run names or order"
    for h, w in zip(have["jobs"], want["jobs"]):
        assert h == w, f"{key}: job {w[0]}"
    assert have["cells"] == want["cells"], f"{key}: table cells"


def test_some_plans_are_pinned():
    """The fast lane's share of :func:`test_plans_are_pinned` (a few small plans)."""
    expected = json.loads(PIN_FILE.read_text())
    for key in FAST_PINS:
        check_pin(key, expected[key])


@pytest.mark.slow
def test_plans_are_pinned():
    """Regression pin: ``plans.json`` was written by :func:`pinned_plans` (runs named
    by identity and shared across tables; Table 2's one hardtanh FP network; ConQ's recipe:
    exponential decay, option-B shortcuts kept in full precision; the transformer tables with all four protocols and the DeiT recipe). Every spec at every scale must
    plan exactly the same runs (names, order, overrides, parents, cost, cells, sharing within the
    plan). Regenerate it only for a deliberate change of a plan, and say why:
    ``PYTHONPATH=.:tests python tests/sweeps/test_spec.py`` (:func:`write_pin_file`)."""
    expected = json.loads(PIN_FILE.read_text())
    assert sorted(pin_keys()) == sorted(expected)
    for key, want in expected.items():
        check_pin(key, want)


def test_pin_records_sharing_not_hashes():
    record = pin_record(planned("pcpp/table7", "smoke"))
    assert all(math.isfinite(j[5]) for j in record["jobs"])
    assert [j[0].rsplit("_", 1)[1] for j in record["jobs"]] == [f"#{i}" for i in range(len(record["jobs"]))]
    assert all(len(c[-1]) == 1 and c[-1][0].startswith("#") for c in record["cells"])


def write_pin_file() -> None:
    """Regenerate ``plans.json`` (one plan per key, one job per line)."""
    plans = pinned_plans()
    lines = ["{"]
    for n, (key, record) in enumerate(sorted(plans.items())):
        head = {k: record[k] for k in ("metric", "kind", "common")}
        lines.append(f"{json.dumps(key)}: {{")
        lines.append(json.dumps(head)[1:-1] + ",")
        lines.append('"jobs": [')
        lines += [json.dumps(j) + ("," if i < len(record["jobs"]) - 1 else "") for i, j in enumerate(record["jobs"])]
        lines.append('],')
        lines.append('"cells": [')
        lines += [json.dumps(c) + ("," if i < len(record["cells"]) - 1 else "") for i, c in enumerate(record["cells"])]
        lines.append("]}" + ("," if n < len(plans) - 1 else ""))
    lines.append("}")
    PIN_FILE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":     # PYTHONPATH=<repo>:<repo>/tests python tests/sweeps/test_spec.py
    write_pin_file()
