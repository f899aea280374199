"""Auto-resume: stop after epoch 1, re-run the same command, and land on exactly the weights and
metrics of an uninterrupted run with the same seed (bit for bit on CPU)."""

from __future__ import annotations

import csv
import signal

import pytest
import torch

from conftest import compose_train, read_results, run_cli
from src.engine.loop import TrainStep
from src.engine.runner import Run
from src.engine.signals import StopSignals

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


# Mid-epoch checkpoints (trainer.checkpoint_every_n_steps=2): last.pt at global steps 2, 4 and 8 (and at
# the epoch ends 3, 6, 9); BNN++ on BWAA, so the flip-ratio reference and the accumulators' overflow
# windows of the epoch in progress must be carried over too.
MID = ["dataset=fake", "dataset.splits.train_size=48", "dataset.splits.test_size=16", "dataset.batch_size=16",
       "model=resnet20", "quantizer=bnnpp", "task=bwaa", "trainer.max_epochs=3", "trainer.progress=false",
       "optimizer.lr=0.05", "trainer.checkpoint_every_n_steps=2"]


def _same_run(a_dir, b_dir):
    a = torch.load(a_dir / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(b_dir / "checkpoints" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 3 and a["global_step"] == b["global_step"] == 9
    assert a["epoch_progress"] is b["epoch_progress"] is None
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert _rows(a_dir) == _rows(b_dir)
    assert read_results(b_dir)["status"] == "completed"


def test_mid_epoch_checkpoint_resumes_at_the_exact_batch(tmp_path, monkeypatch):
    """Killed right after the mid-epoch commit of step 4, or stopped by a signal after step 5 (a
    commit there): the same command resumes at the next batch and ends bit for bit as a run that
    was never interrupted, with the same per-epoch rows (train loss, flip ratio, overflow rates)."""
    cfg = compose_train(MID)
    Run(cfg, tmp_path / "straight").execute()
    assert "train_overflow_rate/layers.0.conv1" in _rows(tmp_path / "straight")[0]

    commit = Run.save_step

    def killed_after_step_4(self, epoch, progress, at):
        commit(self, epoch, progress, at)
        if at == 4:
            raise KeyboardInterrupt  # as a kill right after the commit
    monkeypatch.setattr(Run, "save_step", killed_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        Run(cfg, tmp_path / "killed").execute()
    monkeypatch.undo()
    held = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)
    assert (held["epoch"], held["global_step"], held["epoch_progress"]["steps"]) == (1, 4, 1)
    assert len(_rows(tmp_path / "killed")) == 1
    Run(cfg, tmp_path / "killed").execute()
    _same_run(tmp_path / "straight", tmp_path / "killed")

    stop = StopSignals()
    finish = TrainStep.finish

    def signal_after_step_5(self):
        finish(self)
        if self.t == 4:  # the step that makes global step 5
            stop.signum = signal.SIGTERM
    monkeypatch.setattr(TrainStep, "finish", signal_after_step_5)
    assert Run(cfg, tmp_path / "stopped", stop=stop).execute()["status"] == "interrupted"
    monkeypatch.undo()
    assert read_results(tmp_path / "stopped")["steps"] == 5
    held = torch.load(tmp_path / "stopped" / "checkpoints" / "last.pt", weights_only=False)
    assert (held["epoch"], held["global_step"], held["epoch_progress"]["steps"]) == (1, 5, 2)
    Run(cfg, tmp_path / "stopped").execute()
    _same_run(tmp_path / "straight", tmp_path / "stopped")
