"""torchrun with 2 CPU processes (gloo): one run, files written once by rank 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import read_results, run_cli

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]


def test_torchrun_two_ranks_on_cpu(output_root):
    done = run_cli(["dataset=fake", "dataset.splits.train_size=32", "dataset.splits.test_size=15", "dataset.batch_size=8",
                    "trainer.max_epochs=2", "trainer.progress=false", "run_name=ddp"], output_root, launcher=TORCHRUN)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = output_root / "runs" / "ddp"
    results = read_results(run_dir)
    assert results["status"] == "completed" and results["world_size"] == 2
    # global batch 8 = 4 per rank; 32 samples -> 4 steps per epoch on each rank
    assert results["steps"] == 8
    # every test sample counted once: the accuracy is a multiple of 1/15
    assert abs(results["final_test_acc"] * 15 / 100 - round(results["final_test_acc"] * 15 / 100)) < 1e-6
    assert done.stdout.count("proxbin: completed") == 1  # only rank 0 reports
    log = (run_dir / "train.log").read_text()
    assert log.count("epoch 2/2") == 1


def test_indivisible_global_batch_is_refused(output_root):
    done = run_cli(["dataset=fake", "dataset.batch_size=7", "trainer.progress=false", "run_name=odd"], output_root,
                   launcher=TORCHRUN[:-1] + ["--master_port=29518"])
    assert done.returncode != 0
    assert "dataset.batch_size=7 (the global batch) is not divisible by the 2 ranks" in done.stderr
