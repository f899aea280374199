"""Every method trains for 2 epochs under BW and BWA through the real engine, and the evaluated
network computes with binary weights ±s (s = the method's scale: 1, per layer or per output channel)
and ±1 activations."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_train
from src.core import config_tree
from src.core.errors import UserError
from src.engine.runner import Run
from src.quant.hooks import evaluation_form
from src.quant.layers import QuantizedLayerMixin

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

METHODS = [m for m in config_tree.methods() if m != "fp"]


def tiny_run(tmp_path, quantizer: str, task: str, *extra: str) -> Run:
    cfg = compose_train([
        "dataset=digits", "model=resnet20", f"quantizer={quantizer}", f"task={task}",
        "trainer.max_epochs=2", "trainer.max_steps_per_epoch=2", "trainer.progress=false", "dataset.batch_size=32",
        *(["optimizer=adam", "optimizer.lr=0.001"] if quantizer == "proxgen" else []), *extra,
    ])
    run = Run(cfg, tmp_path)
    results = run.execute()
    assert results["status"] == "completed", results.get("message")
    return run


@pytest.mark.parametrize("task", ["bw", "bwa"])
@pytest.mark.parametrize("quantizer", METHODS)
def test_two_epochs_then_truly_binary(tmp_path, quantizer, task):
    run = tiny_run(tmp_path, quantizer, task)
    row = run.history[-1]
    assert row["epoch"] == 2 and 0 <= row["flip_ratio"] <= 1 and 0 <= row["latent_at_pm1"] <= 1
    assert "test_acc_soft" in row
    layers = [m for m in run.model.modules() if isinstance(m, QuantizedLayerMixin)]
    assert len(layers) == 18  # resnet20 minus the first conv and the fc
    seen_inputs = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen_inputs.append(mod.quantized_input(inp[0]))) for m in layers]
    run.model.eval()
    with evaluation_form(run.model, "binary"), torch.no_grad():
        run.model(run.splits.test.tensors[0][:4])
        for layer in layers:
            unit = layer.quantized_weight()
            assert set(unit.unique().tolist()) <= {-1.0, 1.0}
            s = layer.weight_scale()  # none: ±1; per layer: one value; per output channel: one per row
            s = torch.ones(()) if s is None else s
            expected = s.view([-1] + [1] * (unit.dim() - 1)).expand_as(unit) if s.dim() else torch.full_like(unit, float(s))
            assert torch.equal(layer.effective_weight().abs(), expected)
    for h in hooks:
        h.remove()
    if task == "bwa":  # binary and informative: the task's hard tanh leaves both signs in every layer's input
        assert all(set(x.unique().tolist()) == {-1.0, 1.0} for x in seen_inputs)


def test_bwaa_needs_binary_activations(tmp_path):
    cfg = compose_train(["quantizer=bnnpp", "task=bwaa", "quantizer.activation=null", "trainer.max_epochs=1"])
    with pytest.raises(UserError, match="task=bwaa binarizes activations but quantizer=bnnpp has no activation pair"):
        Run(cfg, tmp_path).execute()
    assert not (tmp_path / "results.json").exists()
