"""``scripts/reproduce.py <table> scale=smoke`` end to end: fabricated data in the real on-disk
formats, stand-in models, one step per run, every cell of the table filled; a second invocation
launches nothing; a deleted result makes exactly that cell run again; failed runs are reported."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from src.core.errors import UserError
from src.reporting.paper import LITERATURE_METHODS
from src.sweeps import launch, spec, spec_files

sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402


def smoke(table: str, root: Path, *extra: str) -> int:
    return reproduce.main([table, "scale=smoke", "launcher=local", "--output-root", str(root / "out"),
                           "--tables", str(root / "tables"), "--figures", str(root / "figures"), *extra])


def runnable(table: str) -> str | None:
    """Why a table cannot run here (a model config another branch brings, a protocol not wired)."""
    try:
        spec.plan(table, "smoke")
    except UserError as exc:
        return str(exc)
    return None


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Path:
    """One folder per table, shared by the tests of this module (a sweep is run once)."""
    return tmp_path_factory.mktemp("sweeps")


@pytest.mark.slow
@pytest.mark.parametrize("table", spec_files.list_specs())
def test_smoke_sweep_fills_every_cell(sweeps, table):
    reason = runnable(table)
    if reason:
        pytest.skip(f"{table} cannot be planned on this branch: {reason}")
    root = sweeps / table.replace("/", "_")
    assert smoke(table, root) == 0
    plan = spec.plan(table, "smoke", root / "out")
    paper, name = table.split("/")
    rows = read_csv(root / "tables" / paper / f"{name}.smoke.csv")
    assert len(rows) == len(plan.cells)
    for row in rows:
        assert row["scale"] == "smoke"
        if row["method"] in LITERATURE_METHODS:
            assert row["origin"] == "literature" and row["ours_mean"] == "" and row["published"]
            continue
        assert int(row["n"]) >= 1 and 0.0 <= float(row["ours_mean"]) <= 100.0, row
        if row["published"]:
            assert float(row["diff"]) == pytest.approx(float(row["ours_mean"]) - float(row["published"]), abs=2e-4)
    markdown = (root / "tables" / paper / f"{name}.smoke.md").read_text()
    assert f"Missing cells: 0 of {sum(1 for c in plan.cells if c.source)}." in markdown
    assert "\\begin{tabular}" in (root / "tables" / paper / f"{name}.smoke.tex").read_text()
    if plan.kind == "figure":
        assert (root / "figures" / f"{paper}_{name}.smoke.png").stat().st_size > 1000
    # every run carries its cell, whatever stand-in model and data it ran on
    for job in plan.jobs:
        results = json.loads((launch.run_dir(plan, job, root / "out") / "results.json").read_text())
        assert results["status"] == "completed" and results["config"]["cell"] == job.cell
        assert results["config"]["logger"]["group"] == table


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.parent.name): p.stat().st_mtime_ns for p in root.rglob("results.json")}


@pytest.mark.slow
def test_rerun_is_idempotent_and_reruns_exactly_what_is_missing(sweeps, capsys):
    """conq/table1 (the smallest table); shares its sweep with the test above."""
    root = sweeps / "conq_table1"
    assert smoke("conq/table1", root) == 0
    sweep = root / "out" / "multirun" / "conq" / "table1"
    first = _mtimes(sweep)
    assert len(first) == 16
    capsys.readouterr()

    assert smoke("conq/table1", root) == 0                     # nothing missing: nothing launched
    assert "[reproduce] launched 0, skipped 16 completed" in capsys.readouterr().out
    assert _mtimes(sweep) == first

    gone = "cifar10_resnet32_ft_bw_conq_seed0_smoke"
    (sweep / gone / "results.json").unlink()                     # a lost result: that cell runs again
    failed = sweep / "cifar10_resnet20_ft_bw_proxquant_seed0_smoke" / "results.json"
    original = failed.read_text()
    failed.write_text(json.dumps(json.loads(original) | {"status": "failed", "message": "boom"}))
    before = _mtimes(sweep)
    try:
        assert smoke("conq/table1", root) == 1                 # the failed run is reported, not relaunched
        out = capsys.readouterr().out
        assert "[reproduce] launched 1, skipped 14 completed" in out
        assert "[reproduce] failed: cifar10_resnet20_ft_bw_proxquant_seed0_smoke" in out
        after = _mtimes(sweep)
        assert {k for k in after if after[k] != before.get(k)} == {gone}
        assert json.loads((sweep / gone / "results.json").read_text())["status"] == "completed"
        assert "resuming from" in (sweep / gone / "train.log").read_text()   # from its checkpoint, not retrained
        rows = {(r["model"], r["method"]): r for r in read_csv(root / "tables" / "conq" / "table1.smoke.csv")}
        assert rows[("resnet20", "proxquant")]["failed"] == "failed" and rows[("resnet20", "proxquant")]["n"] == "0"
        assert "Missing cells: 1 of 16." in (root / "tables" / "conq" / "table1.smoke.md").read_text()
    finally:
        failed.write_text(original)


def test_dry_run_lists_runs_and_cost_and_launches_nothing(tmp_path, capsys):
    assert smoke("pcpp/table2", tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "pcpp/table2 at scale=smoke: 72 runs, 0 done or reported, 72 to launch" in out
    assert "cifar10_resnet20_ft_bwaa_bnnpp_seed0_smoke" in out and "GPU-hours" in out
    assert not (tmp_path / "out" / "multirun").exists()


@pytest.mark.parametrize("args, message", [
    (["pcpp/table2", "scale=huge"], "scale='huge' is not one of paper, mini, smoke"),
    (["pcpp/table2", "launcher=cloud"], "launcher='cloud' is not one of "),
    (["pcpp/table2", "epochs=3"], "argument 'epochs=3' is not one of scale="),
    (["pcpp/nope"], "unknown sweep spec 'pcpp/nope'"),
    (["accum_bits"], "is a train.py experiment (configs/experiment/accum_bits.yaml), not a paper sweep: run it with "
                     "`python src/train.py experiment=accum_bits`"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, args, message):
    assert reproduce.main(args + ["--output-root", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
