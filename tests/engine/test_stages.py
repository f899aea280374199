"""Protocol (3) of PC++ §4.3 as the engine runs it: a binarization-aware pre-train stage in its own
directory, then fine-tuning from its weights; an interrupted command resumes the stage it was in."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import VIT_FAST as FAST
from conftest import compose_train
from src.engine.stages import run_stages

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full



def test_pretrain_stage_precedes_finetuning_hands_over_its_weights_and_resumes(tmp_path, fp_checkpoint):
    overrides = [*FAST, "quantizer=bnnpp", "model.protocol.pretrain=true", "model.protocol.pretrain_epochs=2",
                 "model.protocol.pretrain_lr=0.05", "trainer.max_epochs=0", "pipeline=ft",
                 f"pipeline.checkpoint={fp_checkpoint}"]
    first = run_stages(compose_train([*overrides, "trainer.stop_after_epoch=1"]), tmp_path)
    assert first["status"] == "interrupted" and first["epochs_completed"] == 1  # inside stage 1
    assert not (tmp_path / "results.json").exists()
    final = run_stages(compose_train(overrides), tmp_path)  # the same command again: resumes, then stage 2
    stage1 = json.loads((tmp_path / "pretrain" / "results.json").read_text())
    assert stage1["status"] == "completed" and stage1["epochs_completed"] == 2
    assert stage1["finished_at"] <= final["finished_at"] and final["status"] == "completed"
    handed = tmp_path / "pretrain" / "checkpoints" / "last.pt"
    assert final["init"]["source"] == str(handed) and final["init"]["missing"] == []
    pre = torch.load(handed, weights_only=False)["model"]
    tuned = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["model"]
    fp = torch.load(fp_checkpoint, weights_only=False)
    key = "blocks.0.attn.qkv.weight"
    assert not torch.equal(pre[key], fp[key])  # stage 1 trained (lr 0.05)
    for name, value in pre.items():  # stage 2 (evaluation only) starts from, and so still holds, stage 1's weights
        assert torch.equal(value, tuned[name]), name
