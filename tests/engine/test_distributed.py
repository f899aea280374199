"""torchrun with 2 CPU processes (gloo): one run, files written once by rank 0; SLURM tasks
turned into torchrun's ranks (the 2-task launcher job on the local cluster: tests/launch/test_slurm.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import read_results, run_cli
from src.engine.distributed import MASTER_PORT_BASE, adopt_slurm_tasks

TWO_NODES = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8", "SLURM_PROCID": "5",
             "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1"}


def test_slurm_tasks_of_one_step_become_torchrun_ranks(monkeypatch):
    """srun --ntasks=8 over two nodes: rank 5 of 8, local rank 1, rendezvous on the first node."""
    monkeypatch.setattr(os, "environ", dict(TWO_NODES))
    found = adopt_slurm_tasks()
    assert found == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu07",
                     "MASTER_PORT": str(MASTER_PORT_BASE + 4242)}
    assert all(os.environ[k] == v for k, v in found.items())
    assert adopt_slurm_tasks() == {}  # idempotent: the variables are now torchrun's


@pytest.mark.parametrize("env", [
    {**TWO_NODES, "WORLD_SIZE": "4", "RANK": "0"},            # torchrun inside the allocation decides
    {**TWO_NODES, "SLURM_STEP_NUM_TASKS": "1"},               # a one-task step
    {k: v for k, v in TWO_NODES.items() if k != "SLURM_STEP_NUM_TASKS"},  # the batch script itself, not srun
    {},                                                      # no SLURM
])
def test_slurm_variables_change_nothing_outside_a_multi_task_step(monkeypatch, env):
    monkeypatch.setattr(os, "environ", dict(env))
    assert adopt_slurm_tasks() == {} and dict(os.environ) == env

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517"]


@pytest.mark.slow
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


@pytest.mark.slow
def test_indivisible_global_batch_is_refused(output_root):
    done = run_cli(["dataset=fake", "dataset.batch_size=7", "trainer.progress=false", "run_name=odd"], output_root,
                   launcher=TORCHRUN[:-1] + ["--master_port=29518"])
    assert done.returncode != 0
    assert "dataset.batch_size=7 (the global batch) is not divisible by the 2 ranks" in done.stderr
