"""A real one-node SLURM on this machine (slurm/local_cluster.sh, cluster profile `local`): a 2-cell
sweep through the slurm launcher in which one job gets the time-limit signal mid-run, is requeued
by submitit (max_num_timeout) and resumes from its checkpoint; the single-run sbatch template, killed mid-run
by its own time-limit requeue, resuming and ending bit for bit where the uninterrupted run ends; and
the torchrun template. Skipped only without root or when slurm-wlm/munge cannot be installed."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.core.run_names import run_suffix
from tests.conftest import ROOT, cli_env, compose_train, read_results

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "slurm" / "local_cluster.sh"
EPOCHS, STEPS = 4, 3
RUN = ["dataset=digits", "model=resnet20", f"trainer.max_epochs={EPOCHS}", f"trainer.max_steps_per_epoch={STEPS}",
       "trainer.progress=false"]
DDP_RUN = ["dataset=digits", "model=resnet20", "trainer.device=cpu", "trainer.max_epochs=1", "trainer.max_steps_per_epoch=2",
           "trainer.progress=false"]


def run_name(seed: int, overrides: list[str] = RUN) -> str:
    """The default run_name of a command with ``overrides`` and ``seed=<seed>`` (src/core/run_names.py)."""
    return f"digits_resnet20_e2e_bw_fp_seed{seed}" + run_suffix(compose_train(overrides), overrides)


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
    """Two cells (seed 0, 1) through `hydra/launcher=slurm`; after its first epoch the seed-1 job gets
    SIGUSR2, the signal SLURM sends `signal_delay_s` before the time limit, so that submitit requeues
    it (one of the profile's max_num_timeout = 1 requeues). Returns the sweep directory."""
    output_root = tmp_path_factory.mktemp("slurm_sweep")
    sweep_dir = output_root / "multirun" / "sweep"
    proc = subprocess.Popen([sys.executable, str(ROOT / "src" / "train.py"), "-m", "hydra/launcher=slurm",
                             "cluster=local", "seed=0,1", "+experiment_name=sweep", *RUN], cwd=ROOT, env=cli_env(output_root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        task = requeue_after_first_epoch(lambda: next(iter(array_tasks("proxbin_train", 1)), ""),
                                         sweep_dir / run_name(1), output_root,
                                         how=["scancel", "--signal=USR2", "{job}"])
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
        subprocess.run(["scancel", "-n", "proxbin_train"])
    assert proc.returncode == 0, out[-3000:]
    assert task
    return sweep_dir


def array_tasks(name: str, index: int) -> list[str]:
    ids = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.split()
    return [i for i in ids if i.endswith(f"_{index}")]


def requeue_after_first_epoch(job, run_dir: Path, output_root: Path, how: list[str]) -> str:
    """Wait until the job has checkpointed its first epoch, make it requeue itself mid-run with the
    command ``how`` ("{job}" = its id), and wait until SLURM starts it again by itself. SLURM holds a
    requeued job for the credential lifetime (AuthInfo=cred_expire, 10 s on the local cluster) so that
    it cannot start while slurmd still holds the old, revoked credential; forcing an earlier start
    (`scontrol update StartTime=now`) races that and can kill the job at start."""
    wait_for(lambda: (run_dir / "summary.csv").exists(), "the first epoch's checkpoint", 180, job, output_root)
    job_id = job() if callable(job) else job
    subprocess.run([a.replace("{job}", job_id) for a in how], check=True, timeout=30)
    wait_for(lambda: job_state(job_id) == "PENDING", "the requeued job to be pending", 60, job_id, output_root)
    # the stopped job recorded itself as interrupted, and so it stays until it resumes
    assert read_results(run_dir)["status"] == "interrupted"
    wait_for(lambda: job_state(job_id) not in ("PENDING", "REQUEUED", "REQUEUE_HOLD"),
             "the requeued job to start again", 120, job_id, output_root)
    return job_id


def assert_resumed_mid_run(run_dir: Path) -> None:
    resumed = re.findall(r"resuming from \S+last\.pt \(epoch (\d+) of (\d+)\)", (run_dir / "train.log").read_text())
    assert len(resumed) == 1, "the requeued job did not resume from checkpoints/last.pt"
    epoch, of = map(int, resumed[0])
    assert of == EPOCHS and 1 <= epoch < EPOCHS, f"killed after epoch {epoch} of {of}: not mid-run"
    results = read_results(run_dir)
    assert results["status"] == "completed" and results["epochs_completed"] == EPOCHS
    assert results["steps"] == EPOCHS * STEPS
    assert [int(row["epoch"]) for row in history(run_dir)] == list(range(1, EPOCHS + 1))


def sbatch(script: str, args: list[str], output_root: Path, sbatch_args: list[str], **env: str) -> str:
    proc = subprocess.run(["sbatch", *SBATCH_LOCAL, *sbatch_args, f"--output={output_root}/slurm-%j.out",
                           str(ROOT / "slurm" / script), *args],
                          cwd=ROOT, env=cli_env(output_root, PROXBIN_PYTHON=sys.executable, **env),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def job_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def wait_for(condition, what: str, timeout: float, job, output_root: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            job = job() if callable(job) else job
            subprocess.run(["scancel", job])
            logs = "".join(p.read_text()[-2000:] for p in output_root.glob("slurm-*.out"))
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (job {job}, state "
                        f"{job_state(job) or 'gone'}); job output:\n{logs}")
        time.sleep(0.2)


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as f:
        return [{k: row[k] for k in STATE_COLUMNS} for row in csv.DictReader(f)]


def test_two_cell_sweep_through_slurm_launcher_and_a_requeued_cell(sweep: Path):
    for seed in (0, 1):
        results = read_results(sweep / run_name(seed))
        assert results["status"] == "completed" and results["epochs_completed"] == EPOCHS
        assert results["steps"] == EPOCHS * STEPS and results["config"]["seed"] == seed
    # The jobs ran as the two tasks of one SLURM array with the local profile's settings.
    submission = next((sweep / ".submitit").glob(".submission_file_*.sh")).read_text()
    assert "#SBATCH --array=0-1%2" in submission and "#SBATCH --partition=debug" in submission
    outputs = sorted((sweep / ".submitit").glob("*_[01]/*_[01]_0_log.out"))
    assert len(outputs) == 2 and {re.sub(r"^\d+_", "", p.parent.name) for p in outputs} == {"0", "1"}
    # The seed-1 task was requeued by submitit after its first epoch, started again, and resumed.
    task_logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*_1/*_1_0_log.*"))
    assert re.search(r"Requeued job \d+_1 \(0 remaining timeouts\)", task_logs), task_logs[-2000:]
    assert_resumed_mid_run(sweep / run_name(1))
    assert "resuming" not in (sweep / run_name(0) / "train.log").read_text()


def test_single_run_template_requeues_itself_on_the_time_limit_signal(sweep: Path, tmp_path: Path):
    """USR1 is what `#SBATCH --signal=B:USR1@...` sends before the time limit: the template's trap
    requeues the job, and the re-run resumes and ends exactly where the uninterrupted run ends."""
    output_root = tmp_path / "outputs"
    output_root.mkdir()
    run_dir = output_root / "runs" / run_name(0)
    job = sbatch("train.sbatch", [*RUN, "seed=0"], output_root, ["--cpus-per-task=1"])
    try:
        requeue_after_first_epoch(job, run_dir, output_root, how=["scancel", "--batch", "--signal=USR1", "{job}"])
        wait_for(lambda: job_state(job) == "" and (run_dir / "results.json").exists(), "the requeued job to end",
                 180, job, output_root)
    finally:
        subprocess.run(["scancel", job])
    out = (output_root / f"slurm-{job}.out").read_text()
    assert f"proxbin: time limit near, requeueing job {job}" in out and f"proxbin: job {job} (restart 1)" in out, \
        out[-2000:]
    assert_resumed_mid_run(run_dir)
    # Same end state as the uninterrupted seed-0 cell of the sweep: every epoch's numbers, exactly.
    uninterrupted = sweep / run_name(0)
    assert history(run_dir) == history(uninterrupted)
    assert read_results(run_dir)["final_test_acc"] == read_results(uninterrupted)["final_test_acc"]


def test_torchrun_template_runs_two_processes(cluster, tmp_path: Path):
    output_root = tmp_path / "outputs"
    output_root.mkdir()
    run_dir = output_root / "runs" / run_name(0, DDP_RUN)
    # ImageNet ResNet-50 is the template's default; the overrides after it make it a tiny CPU run.
    job = sbatch("train_ddp.sbatch", DDP_RUN, output_root, ["--cpus-per-task=2"], PROXBIN_NPROC="2")
    try:
        wait_for(lambda: job_state(job) == "" and (run_dir / "results.json").exists(), "the torchrun job to end",
                 180, job, output_root)
    finally:
        subprocess.run(["scancel", job])
    results = read_results(run_dir)
    assert results["status"] == "completed" and results["world_size"] == 2
    assert results["config"]["dataset"]["name"] == "digits" and results["config"]["model"]["name"] == "resnet20"


def test_two_tasks_of_a_launcher_job_are_one_ddp_run(cluster, tmp_path: Path):
    """hydra-submitit-launcher with tasks_per_node=2: the two SLURM tasks read SLURM's variables
    (src.engine.distributed.adopt_slurm_tasks) and train one run of world size 2 (gloo on CPU)."""
    output_root = tmp_path / "outputs"
    output_root.mkdir()
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), "-m", "hydra/launcher=slurm", "cluster=local",
                           "cluster.tasks_per_node=2", "+experiment_name=ddp2", "seed=0", *DDP_RUN],
                          cwd=ROOT, env=cli_env(output_root), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    found = sorted((output_root / "multirun" / "ddp2").rglob("results.json"))
    assert len(found) == 1, found
    results = read_results(found[0].parent)
    assert results["status"] == "completed" and results["world_size"] == 2
    assert (found[0].parent / "train.log").read_text().count("epoch 1/1") == 1  # rank 0 alone logs
    assert "1 job(s): 1 completed" in proc.stdout
