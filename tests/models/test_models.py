"""Model configs: architecture facts from the papers, and a 2-step run of each at tiny size."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from conftest import compose_train
from src.core import config_tree
from src.engine.runner import Run

# transformer configs (timm, 224 px) run at 32 px in tests/models/test_transformers.py: full size is too slow here
MODELS = [m for m in config_tree.models() if "protocol" not in config_tree.option_file("model", m).read_text()]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,millions", [("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66), ("resnet56", 0.85)])
def test_cifar_resnet_sizes_match_he_et_al(name, millions):
    # He et al. 2016, Table 6: parameter counts of the option-A CIFAR ResNets.
    model = instantiate(compose_train([f"model={name}"]).model.net)
    assert round(n_params(model) / 1e6, 2) == millions


def test_cifar_resnet_depth_counts_weighted_layers():
    model = instantiate(compose_train(["model=resnet56"]).model.net)
    weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == 56  # option A shortcuts add no layers


def test_shortcut_b_adds_projections():
    a = instantiate(compose_train(["model=resnet20"]).model.net)
    b = instantiate(compose_train(["model=resnet20", "model.net.shortcut=B"]).model.net)
    assert n_params(b) > n_params(a)
    with pytest.raises(InstantiationException, match="shortcut .C. is not one of"):
        instantiate(compose_train(["model=resnet20", "model.net.shortcut=C"]).model.net)


def test_vgg_small_and_resnet50_sizes():
    assert round(n_params(instantiate(compose_train(["model=vgg_small"]).model.net)) / 1e6, 2) == 4.66  # ConQ Table 2
    cfg = compose_train(["model=resnet50", "dataset=imagenet"])
    assert round(n_params(instantiate(cfg.model.net)) / 1e6, 1) == 25.6


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_two_step_run_of_every_model(model, tmp_path):
    cfg = compose_train([
        "dataset=fake", f"model={model}", "dataset.splits.train_size=8", "dataset.splits.test_size=4",
        "dataset.batch_size=4", "dataset.eval_batch_size=4", "trainer.max_epochs=1",
        "trainer.max_steps_per_epoch=2", "trainer.progress=false",
    ])
    results = Run(cfg, tmp_path).execute()
    assert results["status"] == "completed", results.get("message")
    assert results["steps"] == 2 and results["epochs_completed"] == 1
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    torch.manual_seed(cfg.seed)
    fresh = instantiate(cfg.model.net).state_dict()
    changed = [k for k, v in state["model"].items() if v.dtype.is_floating_point and not torch.equal(v, fresh[k])]
    assert changed, "two optimizer steps changed no weight"


def test_hardtanh_activation_keeps_negative_values():
    relu = instantiate(compose_train(["model=resnet20"]).model.net)
    hard = instantiate(compose_train(["model=resnet20", "model.net.activation=hardtanh"]).model.net)
    x = torch.randn(4, 3, 32, 32)
    assert (relu.act(x) >= 0).all()
    assert (hard.act(x) < 0).any() and hard.act(x).abs().max() <= 1


@pytest.mark.parametrize("model", ["resnet20", "resnet18", "vgg_small", "resnet50"])
def test_binary_activation_tasks_default_to_hardtanh(model):
    """BWA/BWAA need signed layer inputs (sign∘ReLU ≡ +1): their task sets the CNNs' activation."""
    kinds = {}
    for task in ("bw", "bwa", "bwaa"):
        net = instantiate(compose_train([f"model={model}", f"task={task}"]).model.net)
        kinds[task] = {type(m) for m in net.modules()} & {torch.nn.ReLU, torch.nn.Hardtanh}
    assert kinds["bw"] == {torch.nn.ReLU}
    assert kinds["bwa"] == kinds["bwaa"] == {torch.nn.Hardtanh}


@pytest.mark.slow
def test_bf16_channels_last_deterministic_run(tmp_path):
    cfg = compose_train([
        "dataset=fake", "dataset.splits.train_size=8", "dataset.splits.test_size=4", "dataset.batch_size=4",
        "trainer.max_epochs=1", "trainer.max_steps_per_epoch=2", "trainer.progress=false",
        "trainer.precision=bf16", "trainer.channels_last=true", "trainer.deterministic=true",
    ])
    results = Run(cfg, tmp_path).execute()
    assert results["status"] == "completed", results.get("message")
    assert results["hardware"]["device"] == "cpu"
    torch.use_deterministic_algorithms(False)
