"""wandb in offline mode: the run's file holds the resolved config and the final metrics, and a
resumed run continues the same wandb run id."""

from __future__ import annotations

import pytest
import torch

from conftest import read_results, run_cli
from engine.wandb_records import run_contents

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

ARGS = ["logger=wandb", "logger.group=tests/wandb", "trainer.max_steps_per_epoch=2", "trainer.progress=false",
        "trainer.max_epochs=2", "run_name=wb"]


def test_offline_run_records_config_and_metrics(output_root):
    first = run_cli(ARGS + ["trainer.stop_after_epoch=1"], output_root)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = output_root / "runs" / "wb"
    run_id = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["wandb_run_id"]
    assert run_id
    second = run_cli(ARGS, output_root)
    assert second.returncode == 0, second.stderr[-3000:]
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["wandb_run_id"] == run_id

    files = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 2, "the resumed process logs into the same run id"
    before, after = run_contents(files[0]), run_contents(files[1])
    assert after["run_id"] == run_id and after["group"] == "tests/wandb" and after["job_type"] == "bw"
    assert set(after["tags"]) == {"digits", "resnet20", "e2e", "bw", "fp"}
    config = after["config"]
    assert config["model"]["name"] == "resnet20" and config["run_name"] == "wb"
    assert config["optimizer"]["lr"] == 0.1 and config["scheduler"]["T_max"] == 2  # resolved, not ${...}
    results = read_results(run_dir)
    assert after["summary"]["final_test_acc"] == results["final_test_acc"]
    assert after["summary"]["status"] == "completed"
    assert [h["epoch"] for h in before["history"]] == [1] and [h["epoch"] for h in after["history"]] == [2]
    assert after["history"][-1]["test_acc"] == results["final_test_acc"]


def test_wandb_mode_disabled_writes_no_wandb_files(output_root):
    done = run_cli(["logger=wandb", "trainer.max_steps_per_epoch=2", "trainer.progress=false", "trainer.max_epochs=1",
                    "trainer.log_every_n_steps=1", "run_name=wb_disabled"], output_root, WANDB_MODE="disabled")
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = output_root / "runs" / "wb_disabled"
    assert read_results(run_dir)["status"] == "completed"
    assert not [p for p in output_root.rglob("*") if "wandb" in p.name], "WANDB_MODE=disabled writes nothing"


def test_running_train_metrics_are_logged_every_n_steps(output_root):
    done = run_cli(["logger=wandb", "trainer.max_steps_per_epoch=3", "trainer.progress=false", "trainer.max_epochs=1",
                    "trainer.log_every_n_steps=2", "run_name=wb_steps"], output_root)
    assert done.returncode == 0, done.stderr[-3000:]
    (file,) = (output_root / "runs" / "wb_steps" / "wandb").glob("offline-run-*/run-*.wandb")
    rows = run_contents(file)["history"]
    running = [r for r in rows if "running_train_loss" in r]
    assert [r["step"] for r in running] == [2] and "test_acc" not in running[0]
    assert [r["epoch"] for r in rows if "test_acc" in r] == [1]
