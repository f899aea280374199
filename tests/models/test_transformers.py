"""Transformer configs over timm: names, 2-step runs of every config x BW/BWA/BWAA x {bnnpp, pc}
(shrunk to 32 px), the exact set of binarized Linear layers, FP weights via pipeline=ft, offline pretrained."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn
from hydra.utils import instantiate

from conftest import TINY, compose_train, run_cli
from src.core.errors import UserError
from src.engine.runner import Run
from src.models import transformers
from src.models.transformers import (COMPONENTS, block_linears, check_pretrained_tag, timm_model,
                                     timm_pretrained_state_dict, transformer_blocks)
from src.quant.layers import QuantizedLayerMixin

# each config's timm model and pretrained tag: the weights PC++ App. D names (URLs checked below), App. E's models
REAL = {"vit_b16": "vit_base_patch16_224.augreg_in21k_ft_in1k", "deit_t": "deit_tiny_patch16_224.fb_in1k",
        "deit_s": "deit_small_patch16_224.fb_in1k", "deit_b": "deit_base_patch16_224.fb_in1k",
        "swin_t": "swin_tiny_patch4_window7_224.ms_in1k", "nest_t": "nest_tiny_jx.goog_in1k"}
APP_D = "https://storage.googleapis.com/vit_models/augreg/B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0"
VIT_SHRINK = ["model.input_size=32", "+model.net.patch_size=4", "+model.net.depth=2", "+model.net.embed_dim=32",
              "+model.net.num_heads=2"]
# the real configs at 32 px and a few blocks, so that a CPU runs them in seconds
SHRINK = {"vit_b16": [o.replace("+model.net.depth", "model.net.depth") for o in VIT_SHRINK],  # depth is explicit
          "deit_t": VIT_SHRINK, "deit_s": VIT_SHRINK, "deit_b": VIT_SHRINK, "vit_tiny": [],
          "swin_t": ["model.input_size=32", "+model.net.patch_size=2", "+model.net.embed_dim=16",
                     "+model.net.depths=[1,1]", "+model.net.num_heads=[1,2]", "+model.net.window_size=4"],
          "nest_t": ["model.input_size=32", "+model.net.patch_size=4"]}
FAST = ["trainer.max_epochs=1", "trainer.max_steps_per_epoch=2", "trainer.progress=false", "trainer.eval_soft=false",
        "dataset.batch_size=8", "dataset.splits.test_fraction=0.05"]


def test_configs_name_timm_models_at_224():
    for config, arch in REAL.items():
        cfg = compose_train([f"model={config}", "dataset=cifar10"])
        assert cfg.model.net.arch == cfg.model.pretrained_weights.arch == arch and timm.models.is_model(arch)
        assert cfg.model.input_size == 224 and cfg.dataset.splits.image_size == 224  # CIFAR resized to 224
        assert set(cfg.model.protocol) >= {"scaling", "normalization", "pretrain", "kd"}
    assert compose_train(["model=resnet20", "dataset=cifar10"]).dataset.splits.image_size == 32


def test_full_size_parameter_counts():
    # ViT-B/16 86.6 M (NOTES.md), DeiT-T 5.7 M (Touvron et al. Table 1), both with a 1000-class head
    for config, millions in (("vit_b16", 86.6), ("deit_t", 5.7)):
        model = instantiate(compose_train([f"model={config}", "dataset=imagenet"]).model.net)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


@pytest.mark.slow
@pytest.mark.parametrize("quantizer", ["bnnpp", "pc"])
@pytest.mark.parametrize("task", ["bw", "bwa", "bwaa"])
@pytest.mark.parametrize("config", sorted(SHRINK))
def test_every_config_runs_two_steps_binarizing_exactly_the_block_linears(tmp_path, config, task, quantizer):
    cfg = compose_train([f"model={config}", f"quantizer={quantizer}", f"task={task}", *FAST, *SHRINK[config]])
    run = Run(cfg, tmp_path)
    results = run.execute()
    assert results["status"] == "completed", results.get("message")
    assert results["steps"] == 2 and results["final_test_acc"] is not None
    model = run.model
    expected = {f"{b}.{c}" for b in transformer_blocks(model) for c in COMPONENTS.values()}
    quantized = {n for n, m in model.named_modules() if isinstance(m, QuantizedLayerMixin)}
    assert quantized == expected == set(run.replaced)
    plain = [n for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]
    assert plain[0] == "patch_embed.proj" and plain[-1] in ("head", "head.fc")  # kept in full precision
    assert all(not n.startswith(tuple(transformer_blocks(model))) for n in plain)  # nothing in a block left out
    layer = model.get_submodule(sorted(expected)[0])
    assert (layer.act_quantizer is not None) == (task != "bw") and (layer.accumulator is not None) == (task == "bwaa")


def test_task_blocks_and_components_select_exactly_those_layers(tmp_path):
    cfg = compose_train(["model=vit_tiny", "quantizer=bnnpp", "task.blocks=[1]", "task.components=[qkv,fc2]",
                         "trainer.max_epochs=0", "model.protocol.normalization=false"])
    torch.manual_seed(0)
    before = instantiate(cfg.model.net).state_dict()
    run = Run(cfg, tmp_path)
    assert run.execute()["status"] == "completed"
    assert run.replaced == ["blocks.1.attn.qkv", "blocks.1.mlp.fc2"]
    for name, module in run.model.named_modules():
        if isinstance(module, nn.Linear) and name not in run.replaced:
            assert type(module) is nn.Linear, name  # untouched: still timm's own Linear
    # the selected layers are quantized copies of the same weights
    assert torch.equal(run.model.blocks[1].attn.qkv.weight, before["blocks.1.attn.qkv.weight"])
    with pytest.raises(UserError, match=r"indices \[2\] outside 0..1"):
        block_linears(run.model, [2], None)
    with pytest.raises(UserError, match="valid components are"):
        block_linears(run.model, None, ["q"])
    cnn = compose_train(["model=resnet20", "quantizer=bnnpp", "task.blocks=[0]"])
    with pytest.raises(UserError, match="has none"):
        Run(cnn, tmp_path / "cnn").execute()


def test_transformers_start_from_fp_weights_through_the_ft_pipeline_minus_a_differing_head(tmp_path):
    """One way for every model: pipeline=ft pipeline.checkpoint=<file>; a 100-class head is skipped and listed."""
    torch.manual_seed(1)
    source = timm_model("vit_tiny_patch16_224", 100, img_size=32, patch_size=4, depth=2, embed_dim=32, num_heads=2)
    path = tmp_path / "fp100.pth"
    torch.save(source.state_dict(), path)
    cfg = compose_train(["model=vit_tiny", "pipeline=ft", f"pipeline.checkpoint={path}", "trainer.max_epochs=0",
                         "trainer.progress=false"])
    run = Run(cfg, tmp_path / "run")
    results = run.execute()
    assert results["status"] == "completed", results.get("message")
    assert results["init"]["source"] == str(path) and results["init"]["shape_mismatch"] == ["head.bias", "head.weight"]
    for key, value in source.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, run.model.state_dict()[key]), key
    missing = compose_train(["model=vit_tiny", "pipeline=ft", f"pipeline.checkpoint={tmp_path / 'missing.pth'}"])
    with pytest.raises(UserError, match="does not exist"):
        Run(missing, tmp_path / "missing").execute()


@pytest.mark.slow
def test_pretrained_offline_is_a_clear_user_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against a dead network
    cfg = compose_train(["model=deit_t", "pipeline=ft", "pipeline.pretrained=true", *TINY])
    with pytest.raises(UserError, match="pretrained weights for 'deit_t' could not be loaded"
                                        r".*pipeline.checkpoint=/path/to/weights.pth"):
        Run(cfg, tmp_path).execute()
    assert not (tmp_path / "results.json").exists()


def test_model_configs_hold_no_second_way_to_fp_weights():
    for config in sorted(SHRINK):
        model = compose_train([f"model={config}"]).model
        assert "checkpoint" not in model and "pretrained" not in model and "checkpoint" not in model.net


def test_every_transformer_config_pins_the_papers_pretrained_weights():
    """Each config names a timm tag whose weights exist (registry only, nothing downloaded): the
    files of PC++ App. D (ViT-B: 21k->1k for CIFAR, 21k for ImageNet-1K, footnote 5; DeiT: fb_in1k)."""
    urls = {}
    for config, arch in REAL.items():
        check_pretrained_tag(arch)  # passes: explicit tag with weights
        urls[config] = timm.models.get_pretrained_cfg(arch, allow_unregistered=False).url
    assert urls["vit_b16"] == APP_D + "--imagenet2012-steps_20k-lr_0.01-res_224.npz"
    imagenet_vit = compose_train(["model=vit_b16", "model.tag=augreg_in21k"]).model
    assert imagenet_vit.net.arch == imagenet_vit.pretrained_weights.arch == "vit_base_patch16_224.augreg_in21k"
    assert timm.models.get_pretrained_cfg(imagenet_vit.net.arch).url == APP_D + ".npz"
    for config, file in (("deit_t", "deit_tiny_patch16_224-a1311bcf.pth"), ("deit_s", "deit_small_patch16_224-cd65a155.pth"),
                         ("deit_b", "deit_base_patch16_224-b5f2ef4d.pth")):
        assert urls[config] == "https://dl.fbaipublicfiles.com/deit/" + file


@pytest.mark.parametrize("arch, message", [
    # timm's nest_tiny has only an `untrained` entry: timm would log a line and train from random weights
    ("nest_tiny", r"'nest_tiny' names no pretrained tag.*timm's weights for it: nest_tiny_jx.goog_in1k"),
    ("nest_tiny.untrained", r"'nest_tiny.untrained', but timm has none under that name: it would start from "
                            r"random initialization.*: nest_tiny_jx.goog_in1k"),
    ("nest_tiny_jx.in21k", r"'nest_tiny_jx.in21k', but timm has none.*: nest_tiny_jx.goog_in1k"),
    # untagged: timm's current default (another checkpoint than App. D's) is not taken silently
    ("vit_base_patch16_224", r"its current default \(vit_base_patch16_224.augreg2_in21k_ft_in1k\).*"
                             r"vit_base_patch16_224.augreg_in21k_ft_in1k"),
])
def test_pretrained_weights_that_resolve_to_random_initialisation_are_refused_before_any_download(
        monkeypatch, arch, message):
    def no_download(*args, **kwargs):
        raise AssertionError("timm.create_model was called: the check must come first")

    monkeypatch.setattr(transformers.timm, "create_model", no_download)
    with pytest.raises(UserError, match=message):
        timm_pretrained_state_dict(arch)


@pytest.mark.slow
def test_cli_asking_for_random_pretrained_weights_exits_2(output_root):
    """NesT-T as timm's nest_tiny (App. E before the fix) through the real CLI: exit 2, one message, no run."""
    done = run_cli(["model=nest_t", "model.net.arch=nest_tiny.untrained", "pipeline=ft", "pipeline.pretrained=true",
                    "dataset=fake", "dataset.splits.train_size=8", "dataset.splits.test_size=8", "dataset.batch_size=8",
                    "model.input_size=32",
                    "+model.net.patch_size=4", *TINY], output_root, HF_HUB_OFFLINE="1")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "proxbin: error: pipeline.pretrained=true asks for timm's weights 'nest_tiny.untrained', but timm has " \
           "none under that name: it would start from random initialization" in done.stderr
    assert "nest_tiny_jx.goog_in1k" in done.stderr and "Traceback" not in done.stderr
    assert not list(output_root.rglob("results.json"))
