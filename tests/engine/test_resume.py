"""Auto-resume: stop after epoch 1, re-run the same command, and land on exactly the weights and
metrics of an uninterrupted run with the same seed (bit for bit on CPU)."""

from __future__ import annotations

import csv

import pytest
import torch

from conftest import read_results, run_cli

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

COMMAND = ["dataset=digits", "model=resnet20", "trainer.max_epochs=3", "trainer.max_steps_per_epoch=3",
           "trainer.progress=false", "dataset.batch_size=32", "optimizer.lr=0.05"]
TIMING = {"epoch_time_s", "train_img_per_s"}


def _rows(run_dir):
    with open(run_dir / "summary.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def test_interrupted_run_resumes_to_identical_result(output_root):
    straight = run_cli(COMMAND + ["run_name=straight"], output_root)
    assert straight.returncode == 0, straight.stderr[-2000:]

    first = run_cli(COMMAND + ["run_name=resumed", "trainer.stop_after_epoch=1"], output_root)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed_dir = output_root / "runs" / "resumed"
    assert read_results(resumed_dir)["status"] == "interrupted"
    assert read_results(resumed_dir)["epochs_completed"] == 1
    assert len(_rows(resumed_dir)) == 1

    second = run_cli(COMMAND + ["run_name=resumed"], output_root)  # the same command again
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in (resumed_dir / "train.log").read_text()

    a = torch.load(output_root / "runs" / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(resumed_dir / "checkpoints" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 3 and a["global_step"] == b["global_step"] == 9
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert _rows(output_root / "runs" / "straight") == _rows(resumed_dir)
    ra, rb = read_results(output_root / "runs" / "straight"), read_results(resumed_dir)
    for key in ("status", "final_test_acc", "best_test_acc", "best_epoch", "train_loss", "epochs_completed"):
        assert ra[key] == rb[key], key
    assert rb["status"] == "completed"


def test_finished_run_is_not_retrained(output_root):
    args = COMMAND + ["trainer.max_epochs=1", "run_name=done"]
    assert run_cli(args, output_root).returncode == 0
    before = torch.load(output_root / "runs" / "done" / "checkpoints" / "last.pt", weights_only=False)
    again = run_cli(args, output_root)
    assert again.returncode == 0
    after = torch.load(output_root / "runs" / "done" / "checkpoints" / "last.pt", weights_only=False)
    assert before["global_step"] == after["global_step"] == 3
    assert read_results(output_root / "runs" / "done")["status"] == "completed"


def test_different_config_in_same_directory_is_refused_and_untouched(output_root):
    assert run_cli(COMMAND + ["trainer.max_epochs=1", "run_name=mine"], output_root).returncode == 0
    last = output_root / "runs" / "mine" / "checkpoints" / "last.pt"
    content = last.read_bytes()
    clash = run_cli(COMMAND + ["trainer.max_epochs=1", "run_name=mine", "optimizer.lr=0.2"], output_root)
    assert clash.returncode == 2
    assert "optimizer.lr: 0.05 -> 0.2" in clash.stderr and "Traceback" not in clash.stderr
    assert last.read_bytes() == content


# DeiT's recipe on a ViT: RandAugment and random erasing (python/numpy/torch RNGs), Mixup/CutMix (numpy),
# drop path (torch), the warmup schedule and AdamW; 20 images in batches of 6, the incomplete last one dropped
DEIT = ["dataset=fake", "dataset.splits.train_size=20", "dataset.splits.test_size=8", "model=vit_tiny",
        "model.net.drop_path_rate=0.1", "quantizer=bnnpp", "augment=deit", "mixup=deit", "scheduler=cosine_warmup",
        "optimizer=adamw", "trainer.max_epochs=3", "trainer.progress=false", "dataset.batch_size=6"]


@pytest.mark.slow
def test_deit_recipe_resumes_to_identical_result(output_root):
    straight = run_cli(DEIT + ["run_name=straight"], output_root)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert run_cli(DEIT + ["run_name=resumed", "trainer.stop_after_epoch=1"], output_root).returncode == 0
    again = run_cli(DEIT + ["run_name=resumed"], output_root)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed_dir = output_root / "runs" / "resumed"
    assert "resuming from" in (resumed_dir / "train.log").read_text()
    a = torch.load(output_root / "runs" / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(resumed_dir / "checkpoints" / "last.pt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 9                      # 3 full batches per epoch
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert a["scheduler"] == b["scheduler"]
    rows = _rows(output_root / "runs" / "straight")
    assert rows == _rows(resumed_dir) and [float(r["lr"]) for r in rows] == [1e-6, 1e-6, 1e-6 + (5e-4 - 1e-6) / 5]
