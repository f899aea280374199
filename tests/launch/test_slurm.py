"""A real one-node SLURM on this machine (slurm/local_cluster.sh, cluster profile `local`): a 2-cell
sweep through the slurm launcher, the sbatch templates for one run and for torchrun, and a job
killed mid-run by `scontrol requeue` that resumes from its checkpoint and ends in the same state as
the uninterrupted run. Skipped only without root or when slurm-wlm/munge cannot be installed."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, read_results, run_cli

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "slurm" / "local_cluster.sh"
EPOCHS, STEPS = 4, 3
RUN = ["dataset=digits", "model=resnet20", f"trainer.max_epochs={EPOCHS}", f"trainer.max_steps_per_epoch={STEPS}",
       "trainer.progress=false"]
RUN_NAME = "digits_resnet20_e2e_bw_fp_seed{seed}"
# The templates ask for a GPU node; the local node has none and its partition is `debug`.
SBATCH_LOCAL = ["--parsable", "-p", "debug", "--gres=none", "--mem=1G", "--time=10"]
# Per-epoch numbers that must match between a requeued and an uninterrupted run (not the timings).
STATE_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_acc", "test_acc", "test_loss")


@pytest.fixture(scope="module")
def cluster() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to install slurm-wlm/munge and start munged, slurmctld and slurmd")
    proc = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=900)
    if proc.returncode in (3, 4):  # not root / packages not installable
        pytest.skip(f"no local SLURM: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"slurm/local_cluster.sh start failed ({proc.returncode}): {proc.stderr}"


@pytest.fixture(scope="module")
def sweep(cluster, tmp_path_factory) -> Path:
    """Two cells (seed 0, 1) through `hydra/launcher=slurm`; returns the sweep directory."""
    output_root = tmp_path_factory.mktemp("slurm_sweep")
    proc = run_cli(["-m", "hydra/launcher=slurm", "cluster=local", "seed=0,1", *RUN], output_root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return output_root / "multirun" / "sweep"


def sbatch(script: str, args: list[str], output_root: Path, sbatch_args: list[str], **env: str) -> str:
    proc = subprocess.run(["sbatch", *SBATCH_LOCAL, *sbatch_args, f"--output={output_root}/slurm-%j.out",
                           str(ROOT / "slurm" / script), *args],
                          cwd=ROOT, env=cli_env(output_root, PROXBIN_PYTHON=sys.executable, **env),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def job_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def wait_for(condition, what: str, timeout: float, job: str, output_root: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job])
            logs = "".join(p.read_text()[-2000:] for p in output_root.glob("slurm-*.out"))
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (job {job}, state "
                        f"{job_state(job) or 'gone'}); job output:\n{logs}")
        time.sleep(0.2)


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as f:
        return [{k: row[k] for k in STATE_COLUMNS} for row in csv.DictReader(f)]


def test_two_cell_sweep_through_slurm_launcher(sweep: Path):
    for seed in (0, 1):
        results = read_results(sweep / RUN_NAME.format(seed=seed))
        assert results["status"] == "completed" and results["epochs_completed"] == EPOCHS
        assert results["steps"] == EPOCHS * STEPS and results["config"]["seed"] == seed
    # The jobs ran as the two tasks of one SLURM array with the local profile's settings.
    submission = next((sweep / ".submitit").glob(".submission_file_*.sh")).read_text()
    assert "#SBATCH --array=0-1%2" in submission and "#SBATCH --partition=debug" in submission
    outputs = sorted((sweep / ".submitit").glob("*_[01]/*_[01]_0_log.out"))
    assert len(outputs) == 2 and {re.sub(r"^\d+_", "", p.parent.name) for p in outputs} == {"0", "1"}


def test_single_run_template_requeued_mid_run_resumes(sweep: Path, tmp_path: Path):
    output_root = tmp_path / "outputs"
    output_root.mkdir()
    run_dir = output_root / "runs" / RUN_NAME.format(seed=0)
    job = sbatch("train.sbatch", [*RUN, "seed=0"], output_root, ["--cpus-per-task=1"])
    try:
        wait_for(lambda: (run_dir / "summary.csv").exists(), "the first epoch's checkpoint", 180, job, output_root)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        # SLURM holds a requeued job for about two minutes (BeginTime); let it start now.
        wait_for(lambda: job_state(job) == "PENDING", "the requeued job to be pending", 60, job, output_root)
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True, timeout=30)
        wait_for(lambda: job_state(job) == "" and (run_dir / "results.json").exists(), "the requeued job to end",
                 180, job, output_root)
    finally:
        subprocess.run(["scancel", job])
    out = (output_root / f"slurm-{job}.out").read_text()
    assert f"proxbin: job {job} (restart 1)" in out, out[-2000:]
    resumed = re.findall(r"resuming from \S+last\.pt \(epoch (\d+) of (\d+)\)", (run_dir / "train.log").read_text())
    assert len(resumed) == 1, "the requeued job did not resume from checkpoints/last.pt"
    epoch, of = map(int, resumed[0])
    assert of == EPOCHS and 1 <= epoch < EPOCHS, f"killed after epoch {epoch} of {of}: not mid-run"
    results = read_results(run_dir)
    assert results["status"] == "completed" and results["epochs_completed"] == EPOCHS
    # Same end state as the uninterrupted seed-0 cell of the sweep: every epoch's numbers, exactly.
    uninterrupted = sweep / RUN_NAME.format(seed=0)
    assert history(run_dir) == history(uninterrupted)
    assert results["final_test_acc"] == read_results(uninterrupted)["final_test_acc"]
    assert results["steps"] == EPOCHS * STEPS


def test_torchrun_template_runs_two_processes(cluster, tmp_path: Path):
    output_root = tmp_path / "outputs"
    output_root.mkdir()
    run_dir = output_root / "runs" / RUN_NAME.format(seed=0)
    # ImageNet ResNet-50 is the template's default; the overrides after it make it a tiny CPU run.
    job = sbatch("train_ddp.sbatch", ["dataset=digits", "model=resnet20", "trainer.device=cpu", "trainer.max_epochs=1",
                                      "trainer.max_steps_per_epoch=2", "trainer.progress=false"],
                 output_root, ["--cpus-per-task=2"], PROXBIN_NPROC="2")
    try:
        wait_for(lambda: job_state(job) == "" and (run_dir / "results.json").exists(), "the torchrun job to end",
                 180, job, output_root)
    finally:
        subprocess.run(["scancel", job])
    results = read_results(run_dir)
    assert results["status"] == "completed" and results["world_size"] == 2
    assert results["config"]["dataset"]["name"] == "digits" and results["config"]["model"]["name"] == "resnet20"
