"""Each failure gives a clear message, a documented exit code, and leaves
what was already written intact."""

from __future__ import annotations

import hashlib

import pytest

from conftest import TINY, read_results, run_cli

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


@pytest.mark.parametrize("group,bad,valid", [("model", "resnet21", "resnet20"), ("dataset", "mnist", "cifar10"),
                                             ("quantizer", "bnnx", "fp"), ("task", "bwx", "bwa"),
                                             ("pipeline", "pretrain", "e2e")])
def test_unknown_option_names_value_and_choices(output_root, group, bad, valid):
    done = run_cli([f"{group}={bad}"], output_root)
    assert done.returncode != 0
    assert f"Could not find '{group}/{bad}'" in done.stderr
    assert f"Available options in '{group}'" in done.stderr and valid in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_dataset_says_where_and_how(output_root, tmp_path):
    done = run_cli(["dataset=cifar10", f"dataset.splits.root={tmp_path}/nope", "dataset.splits.download=false"], output_root)
    assert done.returncode == 2
    assert f"{tmp_path}/nope/cifar-10-batches-py" in done.stderr and "dataset.splits.root=" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_checkpoint_is_reported_and_left_untouched(output_root, tmp_path):
    bad = tmp_path / "fp.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a torch checkpoint")
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    done = run_cli(["pipeline=ft", f"pipeline.checkpoint={bad}", *TINY], output_root)
    assert done.returncode == 2
    assert f"checkpoint '{bad}' could not be read" in done.stderr and "Traceback" not in done.stderr
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest


def test_corrupt_last_checkpoint_is_not_overwritten(output_root):
    args = ["run_name=corrupt", *TINY]
    assert run_cli(args, output_root).returncode == 0
    last = output_root / "runs" / "corrupt" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a truncated copy
    damaged = last.read_bytes()
    done = run_cli(args, output_root)
    assert done.returncode == 2 and "could not be read" in done.stderr
    assert last.read_bytes() == damaged


def test_divergence_is_recorded_with_its_step(output_root):
    done = run_cli(["run_name=nan", "optimizer.lr=1e30", "trainer.max_steps_per_epoch=20", "trainer.progress=false",
                    "trainer.max_epochs=1"], output_root)
    assert done.returncode == 3
    results = read_results(output_root / "runs" / "nan")
    assert results["status"] == "diverged"
    assert isinstance(results["diverged_step"], int) and 0 <= results["diverged_step"] < 20
    assert "at step" in results["message"]


def test_other_exceptions_are_recorded_as_failed_and_the_run_resumes(output_root):
    """A disk error while writing the second epoch's summary.csv (injected): recorded as failed, with
    the one epoch last.pt holds; the same command again resumes and completes."""
    args = ["run_name=broken", "trainer.max_epochs=2", "trainer.max_steps_per_epoch=1", "trainer.progress=false"]
    done = run_cli(args, output_root, PROXBIN_FAIL_AT="summary.csv:tmp#2")
    assert done.returncode == 1
    results = read_results(output_root / "runs" / "broken")
    assert results["status"] == "failed" and "injected I/O error at summary.csv:tmp" in results["message"]
    assert results["epochs_completed"] == 2 and results["checkpoint_sha256"]  # last.pt was committed first
    again = run_cli(args, output_root)
    assert again.returncode == 0 and read_results(output_root / "runs" / "broken")["status"] == "completed"


def test_ft_without_weights_is_a_user_error(output_root):
    done = run_cli(["pipeline=ft", *TINY], output_root)
    assert done.returncode == 2 and "pipeline.checkpoint=" in done.stderr
