"""``scripts/reproduce.py <table> scale=smoke`` end to end: fabricated data in the real on-disk
formats, stand-in models, one step per run, every cell of the table filled, each run's identity that
of the config it trained; a second invocation launches nothing; a table whose cells another table
already ran reads those runs; a deleted result makes exactly that run again; failed runs are
reported; --dry-run shows the runs other tables share and counts each run once."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from src.core import identity
from src.core.errors import UserError
from src.reporting.paper import LITERATURE_METHODS
from src.sweeps import spec, spec_files

sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


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
    # every run carries its identity and labels, whatever stand-in model and data it ran on, and its
    # identity is that of the config it trained (the engine's resolved config)
    for job in plan.jobs:
        results = json.loads((plan.run_dir(job) / "results.json").read_text())
        assert results["status"] == "completed" and results["config"]["cell"] == job.labels
        assert results["config"]["run_id"] == job.run_id == identity.run_id(results["config"])
        assert results["config"]["logger"]["job_type"] == job.labels["task"]


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.parent.name): p.stat().st_mtime_ns for p in root.rglob("results.json")}


@pytest.mark.slow
def test_rerun_is_idempotent_and_reruns_exactly_what_is_missing(sweeps, capsys):
    """conq/table1 (the smallest table); shares its sweep with the test above. At smoke scale its
    ResNet32/44/56 cells train the ResNet20 stand-in: 4 runs fill its 16 cells."""
    root = sweeps / "conq_table1"
    assert smoke("conq/table1", root) == 0
    runs = root / "out" / "sweeps" / "runs"
    first = _mtimes(runs)
    assert len(first) == 4
    capsys.readouterr()

    assert smoke("conq/table1", root) == 0                     # nothing missing: nothing launched
    assert "[reproduce] conq/table1: launched 0, skipped 4 completed" in capsys.readouterr().out
    assert _mtimes(runs) == first

    plan = spec.plan("conq/table1", "smoke", root / "out")
    conq, pq = (next(j for j in plan.jobs if j.cell["method"] == m) for m in ("conq", "proxquant"))
    (plan.run_dir(conq) / "results.json").unlink()              # a lost result: that run again
    failed = plan.run_dir(pq) / "results.json"
    original = failed.read_text()
    failed.write_text(json.dumps(json.loads(original) | {"status": "failed", "message": "boom"}))
    before = _mtimes(runs)
    try:
        assert smoke("conq/table1", root) == 1                 # the failed run is reported, not relaunched
        out = capsys.readouterr().out
        assert "[reproduce] conq/table1: launched 1, skipped 2 completed" in out
        assert f"[reproduce] failed: {pq.run_name}" in out
        after = _mtimes(runs)
        assert {k for k in after if after[k] != before.get(k)} == {conq.run_name}
        assert json.loads((plan.run_dir(conq) / "results.json").read_text())["status"] == "completed"
        assert "resuming from" in (plan.run_dir(conq) / "train.log").read_text()   # from its checkpoint
        rows = {(r["model"], r["method"]): r for r in read_csv(root / "tables" / "conq" / "table1.smoke.csv")}
        assert all(rows[(m, "proxquant")]["failed"] == "failed" and rows[(m, "proxquant")]["n"] == "0"
                   for m in ("resnet20", "resnet32", "resnet44", "resnet56"))
        assert "Missing cells: 4 of 16." in (root / "tables" / "conq" / "table1.smoke.md").read_text()
    finally:
        failed.write_text(original)


@pytest.mark.slow
def test_a_cell_run_by_table2_is_read_by_table7_without_a_second_run(tmp_path, capsys):
    """PC++ Table 7 prints the error bars of Table 2's E2E rows: Table 7 launched after Table 2
    trains nothing and shows Table 2's numbers."""
    only = ["--only", "dataset=cifar10", "--only", "pipeline=e2e", "--only", "task=bw", "--only", "method=fp,bnnpp"]
    assert smoke("pcpp/table2", tmp_path, *only) == 0          # every run of the selection completed
    runs = tmp_path / "out" / "sweeps" / "runs"
    first = _mtimes(runs)
    assert len(first) == 2
    capsys.readouterr()
    assert smoke("pcpp/table7", tmp_path, *only) == 0          # every run of the selection is there
    assert "[reproduce] pcpp/table7: launched 0, skipped 2 completed" in capsys.readouterr().out
    assert _mtimes(runs) == first
    table2 = {(r["task"], r["method"]): r for r in read_csv(tmp_path / "tables" / "pcpp" / "table2.smoke.csv")
              if r["dataset"] == "cifar10" and r["pipeline"] == "e2e"}
    table7 = {(r["task"], r["method"]): r for r in read_csv(tmp_path / "tables" / "pcpp" / "table7.smoke.csv")
              if r["dataset"] == "cifar10"}
    for key in (("bw", "fp"), ("bw", "bnnpp"), ("bwa", "fp")):  # the FP network fills both task rows
        assert table7[key]["n"] == table2[key]["n"] == "1"
        assert table7[key]["ours_mean"] == table2[key]["ours_mean"] and table7[key]["runs"] == table2[key]["runs"]
    assert table7[("bwa", "bnnpp")]["n"] == "0"
    # each table's manifest names the same run directories for the cells they share
    manifests = {t: json.loads((tmp_path / "out" / "sweeps" / "pcpp" / t / "smoke.cells.json").read_text())
                 for t in ("table2", "table7")}
    e2e = {t: {(c["row"]["dataset"], c["row"]["task"], c["method"]): c["runs"] for c in m["cells"]
               if c["row"]["pipeline"] == "e2e"} for t, m in manifests.items()}
    assert e2e["table2"] == e2e["table7"] and len(e2e["table7"]) == 2
    assert {r for names in e2e["table7"].values() for r in names} == set(first)


def test_dry_run_lists_runs_cost_and_sharing_and_launches_nothing(tmp_path, capsys):
    assert smoke("pcpp/table2", tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    # Table 7's 30 E2E runs are Table 2's; the FP network is also the accumulator study's parent, and
    # its 8-bit row is Table 2's FT BWAA BNN++ cell
    assert "pcpp/table2 at scale=smoke: 72 runs (31 shared with other tables), 0 done or reported, 72 to launch" in out
    plan = spec.plan("pcpp/table2", "smoke", tmp_path / "out")
    cifar = [j for j in plan.jobs if j.cell["dataset"] == "cifar10"]
    fp = next(j for j in cifar if j.cell["method"] == "fp")
    bwaa = {j.cell["method"]: j for j in cifar if j.cell["task"] == "bwaa"}
    line = next(line for line in out.splitlines() if fp.run_name in line and "(from" not in line)
    assert line.split()[-2:] == ["pcpp/accum_bits,", "pcpp/table7"] and line.split()[0] == "0"
    assert next(line for line in out.splitlines() if f" {bwaa['bnnpp'].run_name} " in line).split()[-3:-2] == \
        ["pcpp/accum_bits"]
    assert next(line for line in out.splitlines() if f" {bwaa['bnn'].run_name} " in line).split()[-3:-2] == ["-"]
    assert "GPU-hours for runs other tables also read" in out
    assert not (tmp_path / "out" / "sweeps").exists()


@pytest.mark.slow
def test_dry_run_of_all_tables_counts_each_run_once(tmp_path, capsys):
    assert smoke("all", tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    plans = spec.plan_many(spec_files.list_specs(), "smoke", tmp_path / "out")
    asked, unique = sum(len(p.jobs) for p in plans), len({j.run_id for p in plans for j in p.jobs})
    assert unique < asked
    assert f"all tables: {asked} runs asked for, {unique} unique ({asked - unique} asked for again by another table)" in out
    assert next(line for line in out.splitlines() if line.startswith("pcpp/table7 ")).split()[1:3] == ["30", "30"]
    assert not (tmp_path / "out" / "sweeps").exists()


@pytest.mark.parametrize("args, message", [
    (["pcpp/table2", "scale=huge"], "scale='huge' is not one of paper, mini, smoke"),
    (["pcpp/table2", "launcher=cloud"], "launcher='cloud' is not one of "),
    (["pcpp/table2", "epochs=3"], "argument 'epochs=3' is not one of scale="),
    (["pcpp/nope"], "unknown sweep spec 'pcpp/nope'"),
    (["pcpp/table2"], "name the scale to launch pcpp/table2 at: scale=paper ("),
    (["all", "launcher=local"], "name the scale to launch all at: scale=paper ("),
    (["all", "--only", "model=resnet20"], "--only selects cells of one table; with `all` give no --only"),
    (["accum_bits"], "is a train.py experiment (configs/experiment/accum_bits.yaml), not a paper sweep: run it with "
                     "`python src/train.py experiment=accum_bits`"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, args, message):
    assert reproduce.main(args + ["--output-root", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_launch_without_a_scale_names_every_scale_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reproduce.launch, "launch", lambda *a, **k: pytest.fail("launched without a scale"))
    assert reproduce.main(["pcpp/table2", "--output-root", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert all(f"scale={s} (" in message for s in spec_files.scales()) and "--dry-run scale=paper" in message
    assert not any(tmp_path.iterdir())


def test_paper_scale_prints_its_unique_runs_and_cost_before_it_launches(tmp_path, capsys, monkeypatch):
    printed_before: list[str] = []

    def launched(plan, *args, **kwargs):
        printed_before.append(capsys.readouterr().out)
        return {"launched": [], "skipped": [], "held": [], "blocked": []}

    monkeypatch.setattr(reproduce.launch, "launch", launched)
    monkeypatch.setattr(reproduce.make_tables, "render", lambda *a, **k: None)
    root = tmp_path / "out"
    reproduce.main(["conq/table1", "scale=paper", "--only", "model=resnet20", "--output-root", str(root),
                    "--tables", str(tmp_path / "tables"), "--figures", str(tmp_path / "figures")])
    plan = spec.plan("conq/table1", "paper", root, only={"model": ["resnet20"]})
    hours = sum(j.gpu_hours for j in plan.jobs)
    assert len(printed_before) == 1 and hours > 0
    assert (f"[reproduce] conq/table1 at scale=paper: {len({j.run_id for j in plan.jobs})} unique runs, "
            f"{len(plan.jobs)} to launch, estimated {hours:.2f} GPU-hours") in printed_before[0]
