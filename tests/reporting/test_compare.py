"""Grouping one's own runs by config keys: mean ± std (n) per group from the runs' own numbers, the
runs that did not complete listed and left out, Markdown, CSV, curves, and errors that name the bad
key or metric with the valid ones."""

from __future__ import annotations

import csv
import io
import statistics

import pytest

from reporting.helpers import write_run
from src.core.errors import UserError
from src.reporting import compare, run_results
from src.reporting.stats import Stats


@pytest.fixture
def sweep(tmp_path):
    """method × seed, plus a lone lr=0.05 run, a failed and an unfinished run."""
    accs = {("bnnpp", 0): 91.0, ("bnnpp", 1): 93.5, ("bc", 0): 80.0, ("bc", 1): 84.0}
    for (method, seed), acc in accs.items():
        write_run(tmp_path, f"{method}_{seed}", acc, method=method, seed=seed, curve=[acc - 20, acc - 5, acc])
    write_run(tmp_path, "bc_lr", 70.0, method="bc", lr=0.05, curve=[60.0, 70.0])
    write_run(tmp_path, "bc_failed", None, status="failed", method="bc", seed=2)
    write_run(tmp_path, "bnnpp_running", 99.0, status="running", method="bnnpp", seed=2)
    return tmp_path


def test_groups_by_the_given_keys_with_mean_std_n(sweep):
    result = compare.compare(run_results.from_run_dirs([sweep]), ["quantizer.name", "optimizer.lr"],
                             ["final_test_acc", "best_test_acc"])
    stats = {g.values: g.stats for g in result.groups}
    assert list(stats) == [("bc", 0.05), ("bc", 0.1), ("bnnpp", 0.1)]   # text, then numbers in numeric order
    assert stats[("bc", 0.1)]["final_test_acc"] == Stats(82.0, statistics.stdev([80.0, 84.0]), 2)
    assert stats[("bnnpp", 0.1)]["best_test_acc"] == Stats(93.25, statistics.stdev([92.0, 94.5]), 2)
    assert stats[("bc", 0.05)]["final_test_acc"] == Stats(70.0, None, 1)   # one run: no std
    assert sorted(r.name for r in result.skipped) == ["bc_failed", "bnnpp_running"]   # never averaged


def test_default_groups_are_the_keys_that_differ_except_seed_and_run_name(sweep):
    result = compare.compare(run_results.from_run_dirs([sweep]))
    assert result.by == ["quantizer.name", "optimizer.lr"] and result.metrics == ["final_test_acc"]
    assert [len(g.runs) for g in result.groups] == [1, 2, 2]


def test_keys_a_swept_config_choice_decides_do_not_make_groups(tmp_path):
    """quantizer=bc,bnnpp changes quantizer.scale with the name: grouped by the name alone; a scale
    swept on its own is a key of its own."""
    for method, scale in (("bc", "none"), ("bnnpp", "layer")):
        for seed in (0, 1):
            write_run(tmp_path / "choice", f"{method}_{seed}", 80.0 + seed, method=method, scale=scale, seed=seed)
    assert compare.compare(run_results.from_run_dirs([tmp_path / "choice"])).by == ["quantizer.name"]
    for method in ("bc", "bnnpp"):
        for scale in ("none", "layer"):
            write_run(tmp_path / "both", f"{method}_{scale}", 80.0, method=method, scale=scale)
    assert compare.compare(run_results.from_run_dirs([tmp_path / "both"])).by == ["quantizer.name", "quantizer.scale"]


def test_markdown_lists_the_groups_and_the_runs_left_out(sweep):
    result = compare.compare(run_results.from_run_dirs([sweep]), ["quantizer.name"])
    text = compare.to_markdown(result)
    lines = text.splitlines()
    assert lines[2:6] == ["| quantizer.name | final_test_acc |", "|---|---|",
                          f"| bc | 78.00 ± {statistics.stdev([80.0, 84.0, 70.0]):.2f} (n=3) |",
                          f"| bnnpp | 92.25 ± {statistics.stdev([91.0, 93.5]):.2f} (n=2) |"]
    assert "2 run(s) that did not complete are not included" in lines[0]
    assert f"- failed: {sweep / 'bc_failed'}" in lines and f"- running: {sweep / 'bnnpp_running'}" in lines


def test_one_group_without_differing_keys(tmp_path):
    write_run(tmp_path, "a", 50.0, seed=0)
    write_run(tmp_path, "b", 60.0, seed=1)
    result = compare.compare(run_results.from_run_dirs([tmp_path]))
    assert result.by == [] and [g.stats["final_test_acc"].mean for g in result.groups] == [55.0]
    assert "| all | 55.00 ± 7.07 (n=2) |" in compare.to_markdown(result)


def test_csv_holds_full_precision_and_the_runs(sweep):
    result = compare.compare(run_results.from_run_dirs([sweep]), ["quantizer.name", "task.keep_fp"])
    rows = list(csv.DictReader(io.StringIO(compare.to_csv(result))))
    assert [r["quantizer.name"] for r in rows] == ["bc", "bnnpp"]
    assert rows[0]["task.keep_fp"] == '["conv1", "fc"]'                       # a list value, as JSON
    assert float(rows[1]["final_test_acc_mean"]) == 92.25
    assert float(rows[1]["final_test_acc_std"]) == statistics.stdev([91.0, 93.5])
    assert rows[1]["final_test_acc_n"] == "2" and len(rows[0]["runs"].split(";")) == 3
    lone = compare.compare(run_results.from_run_dirs([sweep / "bc_lr"]), [])
    (row,) = csv.DictReader(io.StringIO(compare.to_csv(lone)))
    assert row["final_test_acc_std"] == "" and row["final_test_acc_n"] == "1"


def test_curve_mean_and_std_per_epoch_and_the_png(sweep, tmp_path):
    result = compare.compare(run_results.from_run_dirs([sweep]), ["quantizer.name"])
    bc = next(g for g in result.groups if g.values == ("bc",))
    points = compare.curve_stats(bc.runs, "test_acc")
    assert [e for e, _ in points] == [1.0, 2.0, 3.0]
    assert points[0][1] == Stats(statistics.fmean([60.0, 64.0, 60.0]), statistics.stdev([60.0, 64.0, 60.0]), 3)
    assert points[2][1] == Stats(82.0, statistics.stdev([80.0, 84.0]), 2)      # the lr run stopped at epoch 2
    path = compare.plot_curves(result, "test_acc", tmp_path / "figs" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(UserError, match="--curve-metric test_loss: no run has this per-epoch column; valid: "
                                        "step, test_acc, train_loss"):
        compare.plot_curves(result, "test_loss", tmp_path / "x.png")


def test_unknown_key_node_key_and_metric_name_the_valid_ones(sweep):
    runs = run_results.from_run_dirs([sweep])
    with pytest.raises(UserError, match=r"--by optimizer.learning_rate: no run has this config key. Valid: the keys "
                                        r"under optimizer: optimizer._target_, optimizer.lr. Keys that differ "
                                        r"between these runs: quantizer.name, optimizer.lr$"):
        compare.compare(runs, ["optimizer.learning_rate"])
    with pytest.raises(UserError, match=r"--by method: .*top-level keys .*: dataset, optimizer, output_root, quantizer, "
                                        r"run_name, seed, task, trainer\."):
        compare.compare(runs, ["method"])
    with pytest.raises(UserError, match=r"--by quantizer: a config node, not a value; group by one of its keys: "
                                        r"quantizer.name, quantizer.scale$"):
        compare.compare(runs, ["quantizer"])
    with pytest.raises(UserError, match=r"--metric test_accuracy: not a numeric entry .*; valid metrics: "
                                        r"best_test_acc, epochs_completed, final_test_acc, train_loss$"):
        compare.compare(runs, ["quantizer.name"], ["final_test_acc", "test_accuracy"])


def test_nothing_completed_gives_no_groups(tmp_path):
    write_run(tmp_path, "a", None, status="diverged")
    result = compare.compare(run_results.from_run_dirs([tmp_path]), ["quantizer.name"])
    assert result.groups == [] and [r.status for r in result.skipped] == ["diverged"]
