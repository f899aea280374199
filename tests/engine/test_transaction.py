"""A run directory is a transaction (src/engine/run_files.py, src/engine/runner.py): fault injection
on the real CLI. Runs killed at named write points (PROXBIN_CRASH_AT), at random moments (kill -9),
stopped by SIGTERM/SIGINT, with a damaged last.pt, on a read-only or full disk, or started twice at
once: after each, no file claims more than last.pt holds, and the same command again ends exactly
where the uninterrupted run ends (weights, optimizer, best weights, every epoch's metrics including
the flip ratio of the binarized layers), or stops with exit 2 leaving every file as it was.

Each run is a process of its own (tests/engine/zygote.py forks them from one that imported
everything once); digits, BNN++ ResNet-20, 3 epochs of 3 steps.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import cli_env
from src.core.checkpoint import load_checkpoint
from src.core.io import CRASH_EXIT
from engine.zygote import Zygote

pytestmark = pytest.mark.slow

COMMAND = ["dataset=digits", "model=resnet20", "quantizer=bnnpp", "trainer.max_epochs=3", "trainer.max_steps_per_epoch=3",
           "trainer.progress=false", "trainer.eval_soft=false", "dataset.batch_size=16",
           "dataset.splits.test_fraction=0.05"]
EPOCHS = 3
TIMING = {"epoch_time_s", "train_img_per_s"}
RESULT_KEYS = ("status", "final_test_acc", "best_test_acc", "best_epoch", "train_loss", "train_acc", "epochs_completed",
               "steps")


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    root = tmp_path_factory.mktemp("transaction")
    with Zygote(cli_env(root / "outputs"), root / "logs") as z:
        z.outputs_root = root / "outputs"
        yield z


@pytest.fixture(scope="module")
def reference(zygote) -> dict:
    done = zygote.run([*COMMAND, "run_name=reference"])
    assert done.returncode == 0, done.stderr[-3000:]
    return final_state(zygote.outputs_root / "runs" / "reference")


def run_dir(zygote, name: str, root: Path | None = None) -> Path:
    return (root or zygote.outputs_root) / "runs" / name


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def final_state(directory: Path) -> dict:
    last = load_checkpoint(directory / "checkpoints" / "last.pt")
    best = load_checkpoint(directory / "checkpoints" / "best.pt")
    results = json.loads((directory / "results.json").read_text())
    assert results["checkpoint_sha256"] == last["checksum"]  # results.json describes this last.pt
    assert not list(directory.rglob("*.tmp")), "a temporary file was left behind"
    return {"model": last["model"], "optimizer": last["optimizer"]["state"], "best_model": best["model"],
            "best": last["best"], "epoch": last["epoch"], "global_step": last["global_step"],
            "history": [{k: v for k, v in row.items() if k not in TIMING} for row in last["history"]],
            "summary": rows(directory / "summary.csv"), "results": {k: results[k] for k in RESULT_KEYS}}


def assert_same(a: dict, b: dict) -> None:
    for part in ("model", "best_model"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}: {key}"
    for index, state in a["optimizer"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"][index][key]), f"optimizer state {index}: {key}"
    for key in ("best", "epoch", "global_step", "history", "summary", "results"):
        assert a[key] == b[key], key
    assert any("flip_ratio" in row for row in a["history"])  # the binarized layers' metric is compared too


def assert_consistent(directory: Path) -> None:
    """No file claims more than last.pt holds."""
    last_path = directory / "checkpoints" / "last.pt"
    last = load_checkpoint(last_path) if last_path.exists() else None
    epoch = last["epoch"] if last else 0
    if (directory / "results.json").exists():
        results = json.loads((directory / "results.json").read_text())
        assert results["epochs_completed"] <= epoch
        assert results["status"] != "completed" or epoch == EPOCHS
        if results["best_epoch"] is not None:
            assert last is not None and results["best_epoch"] <= last["best"]["epoch"]
    if (directory / "summary.csv").exists():
        epochs = [int(r["epoch"]) for r in rows(directory / "summary.csv")]
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) <= epoch
    if (directory / "checkpoints" / "best.pt").exists():
        assert last is not None and load_checkpoint(directory / "checkpoints" / "best.pt")["epoch"] <= last["best"]["epoch"]


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def epochs_recorded(directory: Path) -> int:
    try:
        return json.loads((directory / "results.json").read_text())["epochs_completed"]
    except (OSError, ValueError, KeyError):
        return -1


# Named points between two writes: the temporary of epoch 2's last.pt not yet renamed; epoch 1
# committed and nothing derived (no best.pt); best.pt's temporary; summary.csv at epoch 2 but
# results.json at epoch 1; results.json's epoch-2 record; the final last.pt and nothing after it
# (the re-run trains nothing, it only re-derives); .hydra/ half written.
CRASH_POINTS = ["last.pt:tmp#2", "last.pt:done#1", "best.pt:tmp#1", "summary.csv:done#2", "results.json:done#3",
                "last.pt:done#3", "config.yaml:done#1"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_between_two_writes_the_same_command_ends_as_the_uninterrupted_run(zygote, reference, point):
    name = "crash_" + point.replace(":", "_").replace("#", "_").replace(".", "_")
    crashed = zygote.run([*COMMAND, f"run_name={name}"], PROXBIN_CRASH_AT=point)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr[-2000:]
    assert_consistent(run_dir(zygote, name))
    again = zygote.run([*COMMAND, f"run_name={name}"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(final_state(run_dir(zygote, name)), reference)


def test_random_kill_9_then_the_same_command_ends_as_the_uninterrupted_run(zygote, reference):
    args, directory = [*COMMAND, "run_name=random_kills"], run_dir(zygote, "random_kills")
    chance = random.Random(12)
    kills = 0
    for _ in range(4):
        pid = zygote.start(args)
        wait_until(lambda: (directory / "results.json").exists() or (directory / "checkpoints" / "last.pt").exists())
        time.sleep(chance.uniform(0.0, 0.8))  # a whole run of this size is ~1-2 s past its first checkpoint
        os.kill(pid, signal.SIGKILL)
        done = zygote.wait(pid)
        assert done.returncode in (-signal.SIGKILL, 0), done.stderr[-2000:]
        kills += done.returncode == -signal.SIGKILL
        assert_consistent(directory)
    assert kills >= 2
    final = zygote.run(args)
    assert final.returncode == 0, final.stderr[-3000:]
    assert_same(final_state(directory), reference)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_records_interrupted_exits_128_plus_n_and_resumes(zygote, reference, signum):
    name = f"signal_{signum}"
    args, directory = [*COMMAND, f"run_name={name}"], run_dir(zygote, name)
    pid = zygote.start(args)
    wait_until(lambda: epochs_recorded(directory) >= 1)
    os.kill(pid, signum)
    done = zygote.wait(pid)
    assert done.returncode == 128 + signum, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    results = json.loads((directory / "results.json").read_text())
    last = load_checkpoint(directory / "checkpoints" / "last.pt")
    assert results["status"] == "interrupted" and results["signal"] == signum
    assert 1 <= results["epochs_completed"] == last["epoch"] < EPOCHS
    assert_consistent(directory)
    again = zygote.run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {directory / 'checkpoints' / 'last.pt'} (epoch {last['epoch']} of {EPOCHS})" in \
        (directory / "train.log").read_text()
    assert_same(final_state(directory), reference)


def test_damaged_last_checkpoint_is_refused_and_every_file_left_as_it_was(zygote):
    args, directory = [*COMMAND, "run_name=flipped"], run_dir(zygote, "flipped")
    assert zygote.run([*args, "trainer.stop_after_epoch=1"]).returncode == 0
    last = directory / "checkpoints" / "last.pt"
    data = bytearray(last.read_bytes())
    weights = load_checkpoint(last)["model"]["layers.8.conv2.weight"].numpy().tobytes()
    at = bytes(data).find(weights)
    assert at > 0
    data[at + len(weights) // 2] ^= 0x10  # one bit of one weight
    last.write_bytes(bytes(data))
    before = snapshot(directory)
    again = zygote.run(args)
    assert again.returncode == 2
    assert "is damaged" in again.stderr and str(last) in again.stderr and "Traceback" not in again.stderr
    assert snapshot(directory) == before


def test_two_identical_commands_train_each_epoch_once(zygote, reference):
    args, directory = [*COMMAND, "run_name=twice"], run_dir(zygote, "twice")
    first, second = zygote.start(args), zygote.start(args)
    done = [zygote.wait(first), zygote.wait(second)]
    assert [d.returncode for d in done] == [0, 0], [d.stderr[-2000:] for d in done]
    assert sum("is in use by pid" in d.stderr for d in done) == 1  # one waited for the other
    log = (directory / "train.log").read_text()
    assert [log.count(f"epoch {e}/{EPOCHS}  loss") for e in range(1, EPOCHS + 1)] == [1] * EPOCHS
    assert_same(final_state(directory), reference)


def test_a_held_run_directory_is_refused_at_once_with_wait_for_lock_false(zygote):
    args, directory = [*COMMAND, "run_name=held"], run_dir(zygote, "held")
    holder = zygote.start(args)
    wait_until(lambda: (directory / "results.json").exists())
    refused = zygote.run([*args, "wait_for_lock=false"])
    assert refused.returncode == 2
    assert f"is in use by pid {holder} on host" in refused.stderr and "Traceback" not in refused.stderr
    assert zygote.wait(holder).returncode == 0


# ------------------------------------------------------------- a small disk of our own (root)
@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 64 MiB mounted for the test (needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


def remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


def test_read_only_run_directory_is_refused_untouched_then_resumes(zygote, reference, small_disk):
    args, directory = [*COMMAND, "run_name=readonly"], run_dir(zygote, "readonly", small_disk)
    env = {"PROXBIN_OUTPUT": str(small_disk)}
    assert zygote.run([*args, "trainer.stop_after_epoch=1"], **env).returncode == 0
    before = snapshot(directory)
    remount(small_disk, "ro")
    refused = zygote.run(args, **env)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "cannot be written" in refused.stderr and "Traceback" not in refused.stderr
    remount(small_disk, "rw")
    assert snapshot(directory) == before
    again = zygote.run(args, **env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(final_state(directory), reference)


def test_full_disk_keeps_the_files_consistent_and_the_run_resumes_once_there_is_room(zygote, reference, small_disk):
    args, directory = [*COMMAND, "run_name=full"], run_dir(zygote, "full", small_disk)
    env = {"PROXBIN_OUTPUT": str(small_disk)}
    sizes = [(run_dir(zygote, "reference") / "checkpoints" / name).stat().st_size for name in ("last.pt", "best.pt")]
    # room for epoch 1's last.pt and best.pt, not for epoch 2's last.pt next to them
    remount(small_disk, f"size={sizes[0] + sizes[1] + sizes[0] // 2}")
    for _ in range(2):  # the first run and a re-run on the still-full disk
        done = zygote.run(args, **env)
        assert done.returncode in (1, 2), done.stderr[-2000:]
        assert "No space left on device" in done.stdout + done.stderr and "Traceback" not in done.stderr
        assert_consistent(directory)
    assert load_checkpoint(directory / "checkpoints" / "last.pt")["epoch"] == 1
    remount(small_disk, "size=64m")
    again = zygote.run(args, **env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(final_state(directory), reference)
