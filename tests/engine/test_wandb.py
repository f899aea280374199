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
