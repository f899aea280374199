"""trainer.compile (src.engine.compile): eager stays the reference. Every method x BW/BWA/BWAA trains
2 steps of the engine's own TrainStep compiled and eager on CPU (tests/engine/compile_cases.py): no
graph break, the same losses (1e-5 relative), the same binary weights and binary-form logits; a
compiled run's checkpoints carry the eager keys, it records its compile time, and resumes bit for bit."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_train, read_results
from engine.compile_cases import CASES, compare
from src.core.checkpoint import load_checkpoint
from src.core.errors import UserError
from src.engine.compile import compile_enabled, compile_seconds
from src.engine.runner import Run

CPU = torch.device("cpu")


@pytest.mark.parametrize("setting,device,on", [("auto", "cpu", False), ("auto", "cuda", True), (True, "cpu", True),
                                               (False, "cuda", False)])
def test_auto_compiles_on_cuda_only(setting, device, on):
    assert compile_enabled(setting, torch.device(device)) is on


def test_a_bad_setting_names_the_key_and_the_choices():
    with pytest.raises(UserError, match=r"trainer.compile='yes' is not valid: it must be auto .*, true or false"):
        compile_enabled("yes", CPU)


def test_compile_time_is_the_first_steps_extra_time_over_the_next():
    assert compile_seconds([9.0, 0.5]) == pytest.approx(8.5)
    assert compile_seconds([9.0, 0.5, 0.4]) == pytest.approx(8.6)  # against the fastest step after it
    assert compile_seconds([9.0]) == pytest.approx(9.0)  # nothing after it: all of it
    assert compile_seconds([0.5, 0.6]) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("method,task", CASES, ids=[f"{m}:{t}" for m, t in CASES])
def test_every_method_and_task_trains_the_same_compiled_and_eager(method, task):
    compare(method, task, CPU)


TINY_RESNET = ["dataset=digits", "quantizer=bnnpp", "task=bwaa", "model.net._target_=src.models.resnet_cifar.CifarResNet",
               "+model.net.blocks_per_stage=[1,1]", "+model.net.widths=[8,8]", "trainer.compile=true",
               "trainer.max_epochs=2", "trainer.max_steps_per_epoch=3", "trainer.progress=false", "dataset.batch_size=16",
               "dataset.splits.test_fraction=0.05"]


@pytest.mark.slow
def test_a_compiled_run_records_compile_time_saves_eager_keys_and_resumes_bit_for_bit(tmp_path):
    """BNN++ under BWAA on a two-block ResNet. Each Run's compile_model forgets the graphs traced before
    it, so the resumed half traces afresh, at p = 1/2, as a new process would."""
    whole = Run(compose_train(TINY_RESNET), tmp_path / "whole")
    results = whole.execute()
    assert results["status"] == "completed" and results["compile"] is True and results["compile_s"] > 0
    saved = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")["model"]
    assert list(saved) == list(whole.model.state_dict()) and not any("_orig_mod" in k for k in saved)
    eager = Run(compose_train([*TINY_RESNET, "trainer.compile=false"]), tmp_path / "eager")
    eager.validate()
    eager.setup()
    eager.model.load_state_dict(saved)  # the reported (binary-form) accuracy is that of the weights, evaluated eager
    assert eager.evaluate()["test_acc"] == results["final_test_acc"]
    first = Run(compose_train([*TINY_RESNET, "trainer.stop_after_epoch=1"]), tmp_path / "halves").execute()
    assert first["status"] == "interrupted"
    resumed = Run(compose_train(TINY_RESNET), tmp_path / "halves")
    assert resumed.execute()["status"] == "completed"
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert read_results(tmp_path / "halves")["final_test_acc"] == results["final_test_acc"]
