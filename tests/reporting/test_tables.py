"""Side-by-side tables: seeds averaged (mean, sample std, n), a cell reads exactly the runs its plan
names (by identity), missing and failed cells shown and counted, literature columns published-only,
the paper's layout and names (row groups, column groups, Table 5's ✓/✗, ConQ Table 2's list,
published numbers as printed), and the three formats agree."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from src.core.errors import UserError
from src.reporting import tables
from src.reporting.layout import build_grid
from src.sweeps import cells, spec, spec_files
from src.sweeps.store import RunRecord


def record(run_id: str, acc: float | None, status: str = "completed", best: float | None = None) -> RunRecord:
    return RunRecord(run_id=run_id, cell={"method": "x"}, status=status, final_test_acc=acc,
                     best_test_acc=best if best is not None else acc, origin="test")


def test_mean_std_n_and_failed_runs_reported():
    stats, failed = tables.aggregate([record(f"r{s}", a) for s, a in enumerate([90.0, 91.0, 93.5])], "final_test_acc")
    assert stats == tables.Stats(statistics.fmean([90, 91, 93.5]), statistics.stdev([90, 91, 93.5]), 3)
    assert stats.std == pytest.approx(((1.5 ** 2 + 0.5 ** 2 + 2 ** 2) / 2) ** 0.5)
    stats, failed = tables.aggregate([record("a", None, status="diverged"), record("b", 80.0, status="interrupted")],
                                     "final_test_acc")
    assert stats is None and failed == ["diverged"]    # diverged / unfinished runs do not count


@pytest.fixture(scope="module")
def conq2() -> spec.Plan:
    return spec.plan("conq/table2", "smoke", "/proxbin-test/outputs")


def runs_of(plan: spec.Plan, model: str, method: str) -> tuple[str, ...]:
    return next(c.runs for c in plan.cells if c.row[1] == model and c.method == method)


def test_a_cell_reads_exactly_the_runs_its_plan_names(conq2):
    (conq,) = runs_of(conq2, "resnet20", "conq")
    stray = replace(record("0123456789ab", 10.0), cell={"method": "conq", "model": "resnet20", "scale": "mini"})
    table = tables.build(conq2, [record(conq, 90.0), stray])        # a run of another scale has another identity
    entry = table.entries[(("cifar10", "resnet20", "ft", "bw", ""), "conq")]
    assert entry.ours.n == 1 and entry.ours.mean == 90.0


def test_published_diff_missing_and_literature(conq2):
    (conq,), (fp,), (pq,) = (runs_of(conq2, "resnet20", m) for m in ("conq", "fp", "proxquant"))
    table = tables.build(conq2, [record(conq, 91.0, best=92.0), record(fp, 93.0, best=93.5),
                                 record(pq, None, status="failed")])
    key = ("cifar10", "resnet20", "ft", "bw", "")
    conq_entry = table.entries[(key, "conq")]
    assert conq_entry.ours.mean == 92.0 and conq_entry.published.value == 91.4   # best_test_acc (ConQ §5.2)
    assert conq_entry.diff == pytest.approx(0.6) and conq_entry.decimals == 1     # printed "91.4"
    assert table.entries[(key, "fp")].ours.mean == 93.5
    assert table.expected == 4 + 3 + 3 and table.missing == 10 - 2              # ours: fp, (proxgen,) proxquant, conq per row
    markdown = tables.to_markdown(table)
    assert "Missing cells: 8 of 10." in markdown
    assert "| ResNet20 | FP | 32/32 | 93.50 (n=1) / 91.94 (+1.56) |" in markdown
    assert "|  | DoReFa [27] | 1/32 | lit. 90.0 |" in markdown                    # as printed, not 90.00
    assert "|  | ProxQuant [2] | 1/32 | — (failed) / 90.65 |" in markdown
    assert "|  | ConQ (10 runs avg.) | 1/32 | 92.0 (n=1) / 91.4 (+0.6) |" in markdown
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(table))))
    assert len(rows) == len(conq2.cells) == 25
    by = {(r["model"], r["method"]): r for r in rows}
    assert by[("resnet20", "dorefa")]["origin"] == "literature" and by[("resnet20", "dorefa")]["ours_mean"] == ""
    assert by[("resnet20", "dorefa")]["published"] == "90.0" and by[("resnet20", "conq")]["runs"] == conq
    assert by[("resnet20", "conq")]["diff"] == "0.6000" and by[("resnet18", "conq")]["n"] == "0"
    latex = tables.to_latex(table)
    assert "VGG-Small" in latex and "±" not in latex and "−" not in latex and "--" in latex


def test_conq_table2_is_the_papers_25_row_list(conq2):
    grid = build_grid(conq2.spec, conq2.cells, lambda c: "x")
    assert [text for text, _ in grid.header[0]] == ["Model", "Method", "W/A", "Acc. (%)"]
    assert len(grid.rows) == 25 and grid.group_starts == [0, 8, 18]
    assert [r[0] for r in grid.rows if r[0]] == ["ResNet20", "VGG-Small", "ResNet18"]
    assert [r[1] for r in grid.rows[18:]] == ["FP", "BinaryConnect [1]", "BayesBiNN [31]", "ProxQuant [2]",
                                              "MD-softmax [32]", "MD-softmax-s [32]", "ConQ (10 runs avg.)"]
    assert [r[2] for r in grid.rows].count("32/32") == 3 and [r[2] for r in grid.rows].count("1/32") == 22


def paper_table(name: str) -> tables.Table:
    """The paper-scale table without runs (its printed cells; no run identities needed)."""
    spec_ = spec_files.load_spec(name)
    printed, _ = cells.expand(spec_, "paper", spec_files.load_scale("paper"))
    plan = spec.Plan(table=name, scale="paper", spec=spec_, runs_root=Path("/nowhere"), cells=printed,
                     metric=spec_.get("metric", "final_test_acc"))
    return tables.build(plan, [])


def test_table3_groups_rows_by_model_with_the_papers_names_and_column_group():
    markdown = tables.to_markdown(paper_table("pcpp/table3"))
    lines = markdown.splitlines()
    assert lines[2] == "| Model | Dataset | FP | PQ | rPC | ProxConnect++ |  |  |  |  |"
    assert lines[4] == "|  |  |  |  |  | BC | PC | BNN | BNN+ | BNN++ |"
    body = [line.split(" | ")[:2] for line in lines[5:]]
    assert [b[0].lstrip("| ") for b in body if b[0] != "| "] == ["ViT-B", "DeiT-T", "DeiT-S", "DeiT-B"]
    assert [b[1] for b in body[:6]] == ["CIFAR-10", "CIFAR-100", "ImageNet-1K", "CIFAR-10", "CIFAR-100",
                                        "**ImageNet-1K**"]                   # E2E rows in bold (caption)
    assert "bnnpp" not in markdown and "— / 98.13 |" in markdown
    latex = tables.to_latex(paper_table("pcpp/table3"))
    assert r"\multicolumn{5}{c}{ProxConnect++} \\ \cmidrule(lr){6-10}" in latex and r"\textbf{ImageNet-1K}" in latex


def test_table5_has_the_protocol_ticks():
    lines = tables.to_markdown(paper_table("pcpp/table5")).splitlines()
    assert lines[2] == "| Method | Scaling | Normalization | Pre-train | KD | Accuracy |"
    assert lines[4] == "| PC | ✗ | ✗ | ✗ | ✗ | — / 0.10 |"
    assert lines[8] == "|  | ✓ | ✓ | ✓ | ✓ | — / 90.13 |"
    assert lines[9] == "| BNN++ | ✗ | ✗ | ✗ | ✗ | — / 1.50 |"


def test_published_numbers_keep_the_papers_precision():
    assert "| Swin-T | — / 71.3 | lit. 70.8 |" in tables.to_markdown(paper_table("pcpp/appE"))
    table7 = tables.to_markdown(paper_table("pcpp/table7"))
    assert "| CIFAR-10 | BW | — / 92.01 ± 0.19 |" in table7 and "|  | BWA | — / 92.01 ± 0.13 |" in table7


def test_a_layout_naming_an_unknown_key_or_method_is_a_user_error(conq2):
    bad = dict(conq2.spec, layout={"rows": ["model"], "labels": {"nosuch": "X"}})
    with pytest.raises(UserError, match="layout.labels name method.s. nosuch that the table does not print"):
        build_grid(bad, conq2.cells, str)
    with pytest.raises(UserError, match="layout row key 'size' is not one of dataset, model"):
        build_grid(dict(conq2.spec, layout={"rows": ["size"]}), conq2.cells, str)
    with pytest.raises(UserError, match="layout.bold.key 'task' is not one of the layout's rows .model."):
        build_grid(dict(conq2.spec, layout={"rows": ["model"], "bold": {"key": "task", "where": {}}}), conq2.cells, str)
    with pytest.raises(UserError, match="layout.rows .'pipeline'. print rows"):
        build_grid(dict(conq2.spec, layout={"rows": ["pipeline"]}), conq2.cells, str)


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
    args = ["conq/table2", "--scale", "smoke", "--out", str(tmp_path / "t"), "--figures", str(tmp_path / "f")]
    assert make_tables.main(args + ["--source", f"runs:{empty}"]) == 1          # cells missing
    assert "Missing cells: 10 of 10." in (tmp_path / "t" / "conq" / "table2.smoke.md").read_text()
    assert make_tables.main(args + ["--source", "s3://bucket"]) == 2
    assert "--source 's3://bucket' is not one of: runs, runs:<folder>, wandb:<entity>/<project>" in capsys.readouterr().err
    # a smoke render without --out goes under the output root, not into the tracked results/
    root = tmp_path / "outputs"
    assert make_tables.main(["conq/table2", "--scale", "smoke", "--output-root", str(root), "--source", f"runs:{empty}"]) == 1
    assert sorted(p.name for p in (root / "tables" / "conq").iterdir()) == ["table2.smoke.csv", "table2.smoke.md",
                                                                          "table2.smoke.tex"]


def test_a_stand_in_table_prints_the_papers_cells_beside_its_own():
    """digits/table2 (`compare: {table: pcpp/table2, dataset: cifar10}`) shows PC++'s CIFAR-10 FT numbers."""
    table = paper_table("digits/table2")
    bnn_bwa = table.entries[(("digits", "resnet20", "ft", "bwa", ""), "bnn")]
    assert bnn_bwa.published.value == 90.01 and bnn_bwa.published.dataset == "cifar10"
    assert table.entries[(("digits", "resnet20", "ft", "bw", ""), "fp")].published.value == 92.01
    markdown = tables.to_markdown(table)
    assert "| digits | FT | BW | — / 92.01 |" in markdown and "published pcpp/table2 (cifar10) as printed" in markdown


def test_only_paper_scale_renders_into_the_tracked_results(tmp_path):
    from src.core import config_tree

    assert tables.output_dirs("paper", tmp_path) == (config_tree.ROOT / "results" / "tables",
                                                     config_tree.ROOT / "results" / "figures")
    for scale in ("smoke", "mini"):
        assert tables.output_dirs(scale, tmp_path) == (tmp_path / "tables", tmp_path / "figures")
