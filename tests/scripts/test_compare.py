"""scripts/compare.py: a real 2×2 sweep (two methods × two seeds) gives the means and stds computed
here from the runs' own results.json; exit codes and messages of the command."""

from __future__ import annotations

import csv
import json
import statistics
import sys

import pytest

from conftest import ROOT, run_cli
from reporting.helpers import FakeApi, FakeRun, config, write_run

sys.path.insert(0, str(ROOT / "scripts"))
import compare  # noqa: E402


@pytest.mark.slow
def test_a_two_by_two_sweep_compared_from_its_directory(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    sweep = run_cli(["-m", "quantizer=fp,bc", "seed=0,1", "trainer.max_epochs=2", "trainer.max_steps_per_epoch=2",
                     "dataset.batch_size=16", "dataset.splits.test_fraction=0.05", "trainer.progress=false",
                     "+experiment_name=mine"], outputs)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    sweep_dir = outputs / "multirun" / "mine"
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    assert len(results) == 4 and {r["status"] for r in results} == {"completed"}
    expected = {}
    for method in ("bc", "fp"):
        accs = [r["final_test_acc"] for r in results if r["config"]["quantizer"]["name"] == method]
        expected[method] = (statistics.fmean(accs), statistics.stdev(accs), len(accs))

    out = tmp_path / "cmp"
    rc = compare.main([str(sweep_dir), "--by", "quantizer.name", "--csv", str(out / "t.csv"),
                       "--markdown", str(out / "t.md"), "--curves", str(out / "c.png")])
    printed = capsys.readouterr().out
    assert rc == 0
    rows = {r["quantizer.name"]: r for r in csv.DictReader((out / "t.csv").open())}
    for method, (mean, std, n) in expected.items():
        row = rows[method]
        assert float(row["final_test_acc_mean"]) == pytest.approx(mean, abs=1e-12)
        assert float(row["final_test_acc_std"]) == pytest.approx(std, abs=1e-12)
        assert int(row["final_test_acc_n"]) == n == 2
        assert f"| {method} | {mean:.2f} ± {std:.2f} (n=2) |" in printed
    assert (out / "t.md").read_text() in printed
    assert (out / "c.png").read_bytes()[:4] == b"\x89PNG"
    # without --by: the swept method is the key that differs (the seed is not a group)
    assert compare.main([str(sweep_dir)]) == 0
    assert "grouped by quantizer.name" in capsys.readouterr().out


def test_exit_codes_and_messages(tmp_path, capsys):
    write_run(tmp_path / "s", "a", 90.0, seed=0)
    write_run(tmp_path / "s", "b", 92.0, seed=1)
    write_run(tmp_path / "d", "c", None, status="diverged")
    assert compare.main([str(tmp_path / "s"), "--metric", "final_test_acc,best_test_acc"]) == 0
    assert "| all | 91.00 ± 1.41 (n=2) | 92.00 ± 1.41 (n=2) |" in capsys.readouterr().out
    assert compare.main([str(tmp_path / "s"), "--metric", "top1"]) == 2
    assert "compare: error: --metric top1: not a numeric entry" in capsys.readouterr().err
    assert compare.main([str(tmp_path / "s"), "--by", "lr"]) == 2
    assert "compare: error: --by lr: no run has this config key" in capsys.readouterr().err
    assert compare.main([str(tmp_path / "d")]) == 1
    captured = capsys.readouterr()
    assert f"- diverged: {tmp_path / 'd' / 'c'}" in captured.out and "none of the 1 runs completed" in captured.err
    assert compare.main([]) == 2
    assert "nothing to compare" in capsys.readouterr().err


def test_wandb_project_and_unreachable_wandb(tmp_path, capsys):
    api = FakeApi([FakeRun(f"r{s}", config(method=m, seed=s), {"status": "completed", "final_test_acc": acc})
                   for m, s, acc in (("bc", 0, 80.0), ("bc", 1, 82.0), ("fp", 0, 95.0))])
    assert compare.main(["--wandb", "ent/proj", "--by", "quantizer.name"], api=api) == 0
    out = capsys.readouterr().out
    assert "| bc | 81.00 ± 1.41 (n=2) |" in out and "| fp | 95.00 (n=1) |" in out
    down = FakeApi(error=ConnectionError("Failed to resolve 'api.wandb.ai'"))
    assert compare.main(["--wandb", "ent/proj"], api=down) == 2
    err = capsys.readouterr().err
    assert err.startswith("compare: error: could not read the runs of wandb project ent/proj (ConnectionError")
