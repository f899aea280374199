"""The `ft` pipeline starts from a full-precision checkpoint written by an earlier run."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, read_results, run_cli

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full


def test_finetune_starts_from_fp_checkpoint(output_root, tmp_path):
    assert run_cli(["run_name=fp", *TINY], output_root).returncode == 0
    best = output_root / "runs" / "fp" / "checkpoints" / "best.pt"
    done = run_cli(["pipeline=ft", f"pipeline.checkpoint={best}", "run_name=ft", "trainer.max_epochs=0",
                    "trainer.progress=false"], output_root)
    assert done.returncode == 0, done.stderr[-2000:]
    init = read_results(output_root / "runs" / "ft")["init"]
    assert init["source"] == str(best) and init["missing"] == [] and init["loaded"] > 0
    assert "warnings" not in init
    assert f"initial weights from {best}: {init['loaded']} tensors loaded; skipped (another shape or not in the " \
           f"model): none; left at their initialisation: none" in done.stdout
    # evaluated only (max_epochs=0): every tensor is the checkpoint's
    source = torch.load(best, weights_only=False)["model"]
    tuned = torch.load(output_root / "runs" / "ft" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert source.keys() == tuned.keys()
    for key, value in source.items():
        assert torch.equal(value, tuned[key]), key


def test_finetuning_from_weights_of_another_activation_warns(output_root):
    assert run_cli(["run_name=fp_relu", *TINY], output_root).returncode == 0  # task=bw: ReLU
    best = output_root / "runs" / "fp_relu" / "checkpoints" / "best.pt"
    done = run_cli(["pipeline=ft", f"pipeline.checkpoint={best}", "quantizer=bnnpp", "task=bwa", "run_name=bwa",
                    "trainer.max_epochs=0", "trainer.progress=false"], output_root)
    assert done.returncode == 0, done.stderr[-2000:]
    warning = "were trained with model.net.activation=relu, this run uses hardtanh"
    assert "[WARNING] - !!! the initial weights" in done.stdout and warning in done.stdout
    assert warning in read_results(output_root / "runs" / "bwa")["init"]["warnings"][0]


def test_plain_state_dict_with_other_head_is_loaded_minus_the_head(output_root, tmp_path):
    from hydra.utils import instantiate

    from conftest import compose_train

    model = instantiate(compose_train(["model=resnet20", "dataset=cifar100"]).model.net)
    path = tmp_path / "c100.pth"
    torch.save(model.state_dict(), path)
    done = run_cli(["pipeline=ft", f"pipeline.checkpoint={path}", "run_name=head", *TINY], output_root)
    assert done.returncode == 0, done.stderr[-2000:]
    init = read_results(output_root / "runs" / "head")["init"]
    assert init["shape_mismatch"] == ["fc.bias", "fc.weight"]
    strict = run_cli(["pipeline=ft", f"pipeline.checkpoint={path}", "pipeline.strict=true", "run_name=strict", *TINY],
                     output_root)
    assert strict.returncode == 2 and "do not fit this model" in strict.stderr
