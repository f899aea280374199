"""A sweep's plan: grids that match the published tables, seeds, budgets, FT dependencies, run
names as functions of the cell, cost estimates, scales, --only, clear errors for bad input, and
the plans of every spec pinned."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from src.core.errors import UserError
from src.reporting.paper import LITERATURE_METHODS, TABLES, load_published
from src.sweeps import jobs, spec, spec_files


@pytest.mark.parametrize("table", TABLES)
def test_grid_is_the_published_table(table):
    """Every printed accuracy of the paper is a cell of the sweep, and the sweep has no cell the
    paper does not print (rows x method columns, protocol variants included)."""
    plan = spec.plan(table, "paper", strict=False)
    ours = {c.row + (c.method,) for c in plan.cells}
    published = {(c.dataset, c.model, c.pipeline, c.task, c.note if c.protocols else "", c.method)
                 for c in load_published(table) if c.statistic == "acc"}
    assert ours == published
    for cell in plan.cells:
        assert (cell.source is None) == (cell.method in LITERATURE_METHODS)


def test_every_spec_is_listed_and_plans():
    names = spec_files.list_specs()
    assert set(TABLES) < set(names)
    assert {"pcpp/fig2", "pcpp/fig3", "pcpp/accum_bits"} < set(names)
    for name in names:
        plan = spec.plan(name, "paper", strict=False)
        assert plan.jobs and plan.cells


def test_pcpp_table2_seeds_budget_and_ft_parents(tmp_path):
    plan = spec.plan("pcpp/table2", "paper", tmp_path)
    seeds = Counter((j.cell["dataset"], j.cell["pipeline"], j.cell["task"], j.cell["method"]) for j in plan.jobs)
    assert seeds[("cifar10", "e2e", "bw", "bnnpp")] == 5          # "the mean of five runs"
    assert seeds[("cifar10", "ft", "bwaa", "pq")] == 3            # not stated: 3
    assert seeds[("cifar10", "e2e", "bw", "fp")] == 5             # one FP network per (dataset, model) ...
    assert not any(j.cell["method"] == "fp" and (j.cell["task"] != "bw" or j.cell["pipeline"] == "ft")
                   for j in plan.jobs)                           # ... fills every pipeline/task row
    assert len(plan.jobs) == 2 * (5 + 7 * 3 * 3 + 7 * 2 * 5)
    for job in plan.jobs:
        assert job.run_name == jobs.run_name(job.cell)
        assert job.epochs == {"e2e": 300, "ft": 100}[job.cell["pipeline"]]
        if job.cell["pipeline"] == "ft":
            parent = plan.job(job.parent)
            assert parent.cell | {"seed": 0} == parent.cell and parent.cell["method"] == "fp"
            assert parent.cell["pipeline"] == "e2e" and parent.cell["dataset"] == job.cell["dataset"]
            want = tmp_path.resolve() / "multirun" / "pcpp" / "table2" / parent.run_name / "checkpoints" / "best.pt"
            assert f"pipeline.checkpoint={want}" in job.values
            assert job.stage == 1 and parent.stage == 0
    imagenet = plan.job("imagenet_resnet50_e2e_bw_bnnpp_seed0_paper")
    assert imagenet.groups == {"dataset": "imagenet", "model": "resnet50", "quantizer": "bnnpp", "pipeline": "e2e",
                               "task": "bw", "optimizer": "sgd", "scheduler": "cosine"}
    # FLOP-bound: 3 x 4.1 GFLOPs x 1,281,167 images x 300 epochs at 30 TFLOP/s; ResNet-20 is rate-bound
    assert imagenet.gpu_hours == pytest.approx(3 * 4.1e9 * 1281167 * 300 / 30e12 / 3600)
    assert plan.job("cifar10_resnet20_e2e_bw_pc_seed0_paper").gpu_hours == pytest.approx(50000 * 300 / 10000 / 3600)
    bwa = plan.job("cifar10_resnet20_ft_bwa_bc_seed2_paper")
    assert "model.net.activation=hardtanh" in bwa.values and "optimizer.lr=0.01" in bwa.values


def test_conq_seeds_and_metric():
    plan = spec.plan("conq/table1", "paper")
    seeds = Counter((j.cell["model"], j.cell["method"]) for j in plan.jobs)
    assert seeds[("resnet56", "conq")] == 10 and seeds[("resnet56", "proxquant")] == 4
    assert seeds[("resnet56", "proxgen")] == 1 and seeds[("resnet56", "fp")] == 1
    assert plan.metric == "best_test_acc"
    assert {j.epochs for j in plan.jobs if j.cell["pipeline"] == "ft"} == {300}     # 200 prox + 100 frozen


def test_scales_replace_budget_seeds_data_and_models(tmp_path):
    paper = spec.plan("pcpp/table2", "paper", tmp_path)
    mini = spec.plan("pcpp/table2", "mini", tmp_path)
    smoke = spec.plan("pcpp/table2", "smoke", tmp_path)
    assert {c.row + (c.method,) for c in smoke.cells} == {c.row + (c.method,) for c in paper.cells}
    assert all(j.cell["seed"] == 0 for j in mini.jobs + smoke.jobs)
    assert {j.epochs for j in mini.jobs} == {10, 5}
    assert "dataset.splits.train_subset=5000" in mini.job("cifar10_resnet20_e2e_bw_pc_seed0_mini").values
    job = smoke.job("imagenet_resnet50_ft_bwaa_bnnpp_seed0_smoke")
    assert job.groups["model"] == "resnet20" and job.cell["model"] == "resnet50"   # stand-in, cell keeps the name
    assert f"dataset.splits.root={tmp_path.resolve() / 'smoke_data' / 'imagenet'}" in job.values
    assert "trainer.max_steps_per_epoch=1" in job.values and "dataset.num_classes=4" in job.values
    names = {j.run_name for j in paper.jobs} | {j.run_name for j in mini.jobs} | {j.run_name for j in smoke.jobs}
    assert len(names) == len(paper.jobs) + len(mini.jobs) + len(smoke.jobs)   # scales never share a directory


def test_only_keeps_the_fp_run_a_kept_ft_run_needs():
    plan = spec.plan("conq/table1", "paper", only={"model": ["resnet32"], "method": ["conq"]})
    assert sorted(j.run_name for j in plan.jobs)[0] == "cifar10_resnet32_e2e_bw_fp_seed0_paper"
    assert len(plan.jobs) == 11 and [c.method for c in plan.cells] == ["conq"]


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

PIN_FILE = Path(__file__).with_name("plans_a0c6f47.json")
PIN_ROOT = "/proxbin-pin/outputs"     # plan() only builds paths from the output root; nothing is written


def pin_record(plan: spec.Plan) -> dict:
    """What a plan decides, in the fixture's form: per job (in launch order) its run name, its
    effective overrides (group choices as ``/group=option``, then values, a key given twice counting
    once with its last value, sorted; overrides every job of the plan shares are listed once under
    ``common``; ``<runs>`` is the sweep's run folder), its FT parent, epochs, images per epoch and
    GPU-hours; and the printed table cells."""
    effective = []
    for job in plan.jobs:
        last: dict[str, str] = {}
        for item in [f"/{g}={o}" for g, o in job.groups.items()] + list(job.values):
            key, _, value = item.partition("=")
            last.pop(key, None)
            last[key] = value.replace(f"{PIN_ROOT}/multirun/{plan.table}/", "<runs>/").replace(PIN_ROOT, "<out>")
        effective.append(sorted(f"{k}={v}" for k, v in last.items()))
    common = sorted(set.intersection(*map(set, effective))) if effective else []
    return {
        "metric": plan.metric, "kind": plan.kind, "common": common,
        "jobs": [[j.run_name, [o for o in e if o not in common], j.parent, j.epochs, j.train_images, j.gpu_hours]
                 for j, e in zip(plan.jobs, effective)],
        "cells": [[*c.row, c.method, None if c.source is None else list(c.source)] for c in plan.cells],
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


def pinned_plans() -> dict[str, dict]:
    """Every spec x scale (strict) and the --only selections above, as :func:`pin_record`s."""
    out = {f"{t} {s}": pin_record(spec.plan(t, s, PIN_ROOT))
           for t in spec_files.list_specs() for s in spec_files.scales()}
    for key, (table, scale, only) in PIN_ONLY.items():
        out[key] = pin_record(spec.plan(table, scale, PIN_ROOT, only=only))
    return out


def test_plans_are_pinned():
    """Regression pin against an independent earlier implementation: ``plans_a0c6f47.json`` was
    written by :func:`pinned_plans` running on commit a0c6f47, whose ``spec.plan`` was a single
    nested-loop function; the cell product / job builder / cost estimator that replaced it must
    plan exactly the same runs (names, order, overrides, parents, cost, table cells) for every
    spec at every scale. Regenerate it only for a deliberate change of a plan, and say why."""
    expected = json.loads(PIN_FILE.read_text())
    got = pinned_plans()
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        have = got[key]
        assert {k: have[k] for k in ("metric", "kind", "common")} == \
            {k: want[k] for k in ("metric", "kind", "common")}, key
        assert [j[0] for j in have["jobs"]] == [j[0] for j in want["jobs"]], f"{key}: run names or order"
        for h, w in zip(have["jobs"], want["jobs"]):
            assert h == w, f"{key}: job {w[0]}"
        assert have["cells"] == want["cells"], f"{key}: table cells"
