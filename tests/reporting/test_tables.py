"""Side-by-side tables: seeds averaged (mean, sample std, n), scales never pooled, missing and
failed cells shown and counted, literature columns published-only, the three formats agree."""

from __future__ import annotations

import csv
import io
import statistics

import pytest

from src.reporting import tables
from src.sweeps import spec
from src.sweeps.store import RunRecord


def record(method: str, seed: int, acc: float | None, status: str = "completed", scale: str = "smoke",
           model: str = "resnet20", best: float | None = None) -> RunRecord:
    cell = dict(paper="conq", table="table2", dataset="cifar10", model=model, pipeline="ft", task="bw",
                method=method, variant="", seed=seed, scale=scale)
    return RunRecord(cell=cell, status=status, final_test_acc=acc, best_test_acc=best if best is not None else acc,
                     origin="test")


def test_mean_std_n_per_cell_and_failed_runs_reported():
    runs = [record("conq", s, a) for s, a in enumerate([90.0, 91.0, 93.5])] + [
        record("pq", 0, None, status="diverged"), record("pq", 1, 80.0, status="interrupted")]
    stats, bad = tables.aggregate(runs, "final_test_acc")
    key = ("cifar10", "resnet20", "ft", "bw", "conq", "")
    assert stats[key] == tables.Stats(statistics.fmean([90, 91, 93.5]), statistics.stdev([90, 91, 93.5]), 3)
    assert stats[key].std == pytest.approx(((1.5 ** 2 + 0.5 ** 2 + 2 ** 2) / 2) ** 0.5)
    assert ("cifar10", "resnet20", "ft", "bw", "pq", "") not in stats    # diverged / unfinished runs do not count
    assert bad == {("cifar10", "resnet20", "ft", "bw", "pq", ""): ["diverged"]}


def test_scales_are_never_pooled():
    with pytest.raises(ValueError, match="must not be pooled"):
        tables.aggregate([record("conq", 0, 90.0), record("conq", 1, 91.0, scale="mini")], "final_test_acc")
    plan = spec.plan("conq/table2", "smoke")
    table = tables.build(plan, [record("conq", 0, 90.0), record("conq", 0, 10.0, scale="mini")])
    assert table.entries[("cifar10", "resnet20", "ft", "bw", "", "conq")].ours.n == 1


def test_layout_published_diff_missing_and_literature():
    plan = spec.plan("conq/table2", "smoke")
    runs = [record("conq", 0, 91.0, best=92.0), record("fp", 0, 93.0, best=93.5), record("proxquant", 0, None, status="failed")]
    runs[1].cell.update(pipeline="e2e")           # FT rows' FP cell is the E2E FP network they start from
    table = tables.build(plan, runs)
    assert [r[1] for r in table.rows] == ["resnet20", "vgg_small", "resnet18"]   # the paper's row order
    assert table.methods[:4] == ["fp", "dorefa", "lqnets", "irnet"]
    conq = table.entries[("cifar10", "resnet20", "ft", "bw", "", "conq")]
    assert conq.ours.mean == 92.0 and conq.published == 91.4 and conq.diff == pytest.approx(0.6)   # best_test_acc
    assert table.entries[("cifar10", "resnet20", "ft", "bw", "", "fp")].ours.mean == 93.5
    assert table.expected == 4 + 3 + 3 and table.missing == 10 - 2  # ours: fp, (proxgen,) proxquant, conq per row
    markdown = tables.to_markdown(table)
    assert "Missing cells: 8 of 10." in markdown
    assert "| cifar10 | resnet20 | FT | BW | 93.50 (n=1) / 91.94 (+1.56) | lit. 90.00 |" in markdown
    assert "— (failed) / 90.65" in markdown and "92.00 (n=1) / 91.40 (+0.60)" in markdown
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(table))))
    assert len(rows) == len(plan.cells)
    by = {(r["model"], r["method"]): r for r in rows}
    assert by[("resnet20", "dorefa")]["origin"] == "literature" and by[("resnet20", "dorefa")]["ours_mean"] == ""
    assert by[("resnet20", "conq")]["diff"] == "0.6000" and by[("resnet18", "conq")]["n"] == "0"
    latex = tables.to_latex(table)
    assert "vgg\\_small" in latex and "±" not in latex and "−" not in latex and "--" in latex


def test_paper_scale_and_smoke_tables_go_to_different_files(tmp_path):
    assert tables.output_stem("pcpp/table2", "paper", tmp_path) == tmp_path / "pcpp" / "table2"
    assert tables.output_stem("pcpp/table2", "smoke", tmp_path) == tmp_path / "pcpp" / "table2.smoke"


def test_make_tables_cli_exit_codes(tmp_path, capsys):
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_tables

    empty = tmp_path / "runs"
    empty.mkdir()
    args = ["conq/table1", "--scale", "mini", "--out", str(tmp_path / "t"), "--figures", str(tmp_path / "f")]
    assert make_tables.main(args + ["--source", f"runs:{empty}"]) == 1          # cells missing
    assert "Missing cells: 16 of 16." in (tmp_path / "t" / "conq" / "table1.mini.md").read_text()
    assert make_tables.main(args + ["--source", "s3://bucket"]) == 2
    assert "--source 's3://bucket' is not one of: runs, runs:<folder>, wandb:<entity>/<project>" in capsys.readouterr().err
