"""The bit-width study end to end: `experiment=accum_bits` as a real multirun over two widths on the
digits data, then scripts/plot_accum_bits.py reads the runs' results.json into a PNG, a CSV and a
Markdown table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, run_cli

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


def test_bit_width_sweep_and_plot(output_root, tmp_path):
    assert run_cli(["run_name=fp", *TINY], output_root).returncode == 0
    best = output_root / "runs" / "fp" / "checkpoints" / "best.pt"
    sweep = run_cli(["-m", "experiment=accum_bits", f"pipeline.checkpoint={best}", "task.accum.bits=6,12",
                     "trainer.max_epochs=1", "trainer.max_steps_per_epoch=2", "trainer.progress=false"], output_root)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    sweep_dir = output_root / "multirun" / "accum_bits"
    runs = sorted(p.parent.name for p in sweep_dir.rglob("results.json"))
    assert runs == ["digits_resnet20_ft_bwaa_bnnpp_b12_seed0", "digits_resnet20_ft_bwaa_bnnpp_b6_seed0"]

    out = tmp_path / "fig" / "accum_bits.png"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_accum_bits.py"), str(sweep_dir), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out.with_suffix(".csv")) as f:
        rows = {int(r["bits"]): r for r in csv.DictReader(f)}
    assert sorted(rows) == [6, 12]
    for bits, row in rows.items():
        results = json.loads((sweep_dir / f"digits_resnet20_ft_bwaa_bnnpp_b{bits}_seed0" / "results.json").read_text())
        assert row["status"] == results["status"] == "completed"
        assert float(row["test_acc"]) == results["final_test_acc"]
        rates = list(results["overflow_rates"].values())
        assert float(row["overflow_rate_max"]) == max(rates)
    # ResNet-20's largest fan-in is 64·3·3 = 576 < 2^11: a 12-bit register never overflows, a 6-bit one does
    assert float(rows[12]["overflow_rate_max"]) == 0.0 and float(rows[6]["overflow_rate_max"]) > 0.0
    assert "| 6 | completed |" in out.with_suffix(".md").read_text()


def test_plot_without_runs_says_what_to_do(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_accum_bits.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no BWAA results.json" in done.stderr and "experiment=accum_bits" in done.stderr
