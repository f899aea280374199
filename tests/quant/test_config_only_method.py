"""Adding a config-only method is one YAML and nothing else: the README's example (the BNN++ pair
with μ 5 → 60) written into configs/quantizer/ is a method everywhere at once — Hydra composes it,
a 2-step run trains with its schedule and evaluates a binary network, scripts/check_quantizer.py
gives its Corollary 1 verdict, and config_tree lists it."""

from __future__ import annotations

import importlib.util
import uuid

import pytest
import torch

from conftest import ROOT, compose_train
from src.core import config_tree
from src.engine.runner import Run
from src.quant.hooks import evaluation_form
from src.quant.layers import QuantizedLayerMixin
from src.quant.quantizers import BNNPlusPlus
from src.quant.schedules import linear

pytestmark = pytest.mark.slow  # CLI, subprocess or training runs: make test-full

YAML = """# @package quantizer
name: {name}
scale: layer
weight: {{_target_: src.quant.quantizers.BNNPlusPlus, mu_start: 5.0, mu_end: 60.0}}
activation: {{_target_: src.quant.quantizers.BNNPlusPlus, mu_start: 5.0, mu_end: 60.0}}
update_rule: {{_target_: src.quant.updates.LatentUpdate, _partial_: true, clip: false}}
"""


@pytest.fixture
def config_only_method():
    """configs/quantizer/bnnpp_fast_<random>.yaml in the real config tree, removed afterwards."""
    name = f"bnnpp_fast_{uuid.uuid4().hex[:8]}"
    path = config_tree.CONFIG_DIR / "quantizer" / f"{name}.yaml"
    path.write_text(YAML.format(name=name))
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


def check_quantizer_script():
    spec = importlib.util.spec_from_file_location("check_quantizer", ROOT / "scripts" / "check_quantizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_yaml_is_a_method_everywhere(config_only_method, tmp_path, capsys):
    name = config_only_method
    assert name in config_tree.methods()

    cfg = compose_train([f"quantizer={name}", "task=bwa", "dataset=digits", "model=resnet20", "trainer.max_epochs=1",
                         "trainer.max_steps_per_epoch=2", "trainer.progress=false", "trainer.eval_soft=false",
                         "dataset.batch_size=8", "dataset.splits.test_fraction=0.05"])
    assert cfg.quantizer.name == name and name in cfg.run_name
    run = Run(cfg, tmp_path)
    results = run.execute()
    assert results["status"] == "completed", results.get("message")
    assert results["steps"] == 2 and results["final_test_acc"] is not None

    layers = [m for m in run.model.modules() if isinstance(m, QuantizedLayerMixin)]
    assert len(layers) == len(run.replaced) == 18  # resnet20 minus the first conv and the fc
    for layer in layers:
        for pair in (layer.weight_quantizer, layer.act_quantizer):
            # trained on this config's schedule: μ at the last step's progress on the 5 -> 60 line
            assert type(pair) is BNNPlusPlus and pair.mu_end == 60.0 and pair.progress > 0
            assert pair.mu == pytest.approx(linear(5.0, 60.0, pair.progress))
    inputs = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: inputs.append(mod.quantized_input(inp[0]))) for m in layers]
    run.model.eval()
    with evaluation_form(run.model, "binary"), torch.no_grad():
        run.model(run.splits.test.tensors[0][:4])
        assert all(set(layer.quantized_weight().unique().tolist()) == {-1.0, 1.0} for layer in layers)
    for hook in hooks:
        hook.remove()
    assert all(set(x.unique().tolist()) <= {-1.0, 1.0} for x in inputs)

    assert check_quantizer_script().main([name]) == 0
    verdict = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())[name]
    assert verdict.startswith("in PC++")  # F = SS_μ with B = SS_μ' for every μ: Corollary 2
