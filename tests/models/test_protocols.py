"""Each PC++ §4.3 protocol changes exactly what it claims, on the tiny ViT and the digits data
(the pre-train stage, protocol (3), is the engine's: tests/engine/test_stages.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import VIT_FAST as FAST
from conftest import compose_train
from src.core.errors import UserError
from src.engine.runner import Run
from src.quant.hooks import evaluation_form
from src.quant.layers import QuantizedLayerMixin



def build(tmp_path, *overrides: str) -> Run:
    run = Run(compose_train([*FAST, "quantizer=bnnpp", "trainer.max_epochs=0", *overrides]), tmp_path)
    assert run.execute()["status"] == "completed"
    return run


@pytest.mark.parametrize("quantizer", ["bnnpp", pytest.param("bireal", marks=pytest.mark.slow)])
@pytest.mark.parametrize("scaling", [True, False])
def test_scaling_multiplies_binary_weights_by_mean_abs_latent(tmp_path, scaling, quantizer):
    """Protocol (1) replaces the method's own weight statistics (Bi-Real: per-channel scale, s not in the
    backward) by s = mean|w| absorbed into F, Ŵ = s·F(w/s); off, plain ±1 on the raw w."""
    run = build(tmp_path, f"quantizer={quantizer}", f"model.protocol.scaling={scaling}")
    layers = [m for m in run.model.modules() if isinstance(m, QuantizedLayerMixin)]
    assert len(layers) == 8
    for layer in layers:
        with torch.no_grad():
            layer.weight.mul_(torch.rand_like(layer.weight) * 3)  # any magnitude
        s = layer.weight.abs().mean()
        assert layer.scale_in_backward
        if scaling:
            assert layer.scale == "layer" and torch.allclose(layer.weight_scale(), s)
            assert layer.normalize == "layer_mean_abs"
        else:
            assert layer.scale == "none" and layer.weight_scale() is None and layer.normalize == "none"
        x_in = torch.randn(3, 5, layer.in_features)
        layer.eval()
        with evaluation_form(layer, "binary"), torch.no_grad():
            expected = F.linear(x_in, torch.sign(layer.weight) * (s if scaling else 1.0), layer.bias)
            assert torch.allclose(layer(x_in), expected, atol=1e-5)


@pytest.mark.slow
def test_normalization_adds_one_trained_layernorm_per_attention_block(tmp_path):
    without = build(tmp_path / "off", "model.protocol.normalization=false")
    assert not [n for n, _ in without.model.named_modules() if n.endswith("post_norm")]
    fp = build(tmp_path / "fp", "quantizer=fp")  # a full-precision run keeps timm's model as it is
    assert not [n for n, _ in fp.model.named_modules() if n.endswith("post_norm")]
    one = build(tmp_path / "one", "task.blocks=[1]")  # only the binarized blocks get one
    assert [n for n, _ in one.model.named_modules() if n.endswith("post_norm")] == ["blocks.1.attn.post_norm"]

    run = Run(compose_train([*FAST, "quantizer=bnnpp", "trainer.max_epochs=1", "optimizer=adam"]), tmp_path / "on")
    assert run.execute()["status"] == "completed"
    norms = {n: m for n, m in run.model.named_modules() if n.endswith("post_norm")}
    assert sorted(norms) == ["blocks.0.attn.post_norm", "blocks.1.attn.post_norm"]
    for norm in norms.values():
        assert isinstance(norm, nn.LayerNorm) and norm.normalized_shape == (32,)
        assert not torch.equal(norm.weight, torch.ones_like(norm.weight))  # it was trained (init is 1)
    optimized = {id(p) for g in run.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in optimized for m in norms.values() for p in m.parameters())
    # the attention block's output is the LayerNorm of what the attention computes without it
    attn = run.model.blocks[0].attn
    x = torch.randn(2, 9, 32)
    attn.eval()
    with torch.no_grad():
        hooked = attn(x)
        handles = dict(attn._forward_hooks)
        attn._forward_hooks.clear()
        raw = attn(x)
        attn._forward_hooks.update(handles)
    assert torch.allclose(hooked, attn.post_norm(raw))
    assert "blocks.0.attn.post_norm.weight" in torch.load(run.ckpt_dir / "last.pt", weights_only=False)["model"]


def test_kd_run_records_nonzero_terms_and_needs_fp_weights(tmp_path, fp_checkpoint):
    run = Run(compose_train([*FAST, "quantizer=pc", "trainer.max_epochs=1", "model.protocol.kd=true",
                             "pipeline=ft", f"pipeline.checkpoint={fp_checkpoint}"]), tmp_path / "kd")
    assert run.execute()["status"] == "completed"
    row = run.history[-1]
    assert row["kd_logits"] > 0 and row["kd_dmd"] > 0 and row["kd_hidden"] > 0
    assert not [n for n, _ in run.distiller.teacher.named_modules() if n.endswith("post_norm")]  # the FP model
    with pytest.raises(UserError, match="under pipeline=e2e distils from the released full-precision 'vit_tiny'.*"
                                        "model.protocol.kd_teacher=<run dir>"):
        Run(compose_train([*FAST, "quantizer=pc", "model.protocol.kd=true"]), tmp_path / "no").execute()
    # a full-precision run (a table's FP column under the spec's protocols) trains without a teacher
    fp = Run(compose_train([*FAST, "quantizer=fp", "trainer.max_epochs=1", "model.protocol.kd=true",
                            "pipeline=ft", f"pipeline.checkpoint={fp_checkpoint}"]), tmp_path / "fp")
    assert fp.execute()["status"] == "completed" and fp.distiller is None and "kd_logits" not in fp.history[-1]


@pytest.mark.parametrize("teacher_from", ["library", "kd_teacher"])
def test_e2e_kd_distils_from_released_fp_weights_not_from_the_random_student(tmp_path, fp_checkpoint, teacher_from):
    """PC++ §4.3 (4) "full precision pre-trained models as the teacher" under E2E: the teacher holds the
    library's pretrained weights (here a local file standing in for timm's) or model.protocol.kd_teacher's,
    while the student starts from its random initialisation."""
    released = {k: v + 0.5 if v.is_floating_point() else v for k, v in torch.load(fp_checkpoint, weights_only=True).items()}
    path = tmp_path / "released.pth"  # trained weights: not the seed's initialisation
    torch.save(released, path)
    source = ([f"+model.pretrained_weights={{_target_:torch.load,f:'{path}',weights_only:true}}"]
              if teacher_from == "library" else [f"model.protocol.kd_teacher={path}"])
    run = Run(compose_train([*FAST, "quantizer=bnnpp", "trainer.max_epochs=1", "pipeline=e2e",
                             "model.protocol.kd=true", *source]), tmp_path / "kd")
    run.setup()
    teacher = run.distiller.teacher.state_dict()
    assert teacher.keys() == released.keys() and all(torch.equal(teacher[k], released[k]) for k in released)
    student = run.model.state_dict()
    assert not torch.equal(student["patch_embed.proj.weight"], released["patch_embed.proj.weight"])
    assert all(not p.requires_grad for p in run.distiller.teacher.parameters())


def test_kd_teacher_of_another_shape_is_refused_naming_the_file(tmp_path, fp_checkpoint):
    state = torch.load(fp_checkpoint, weights_only=True)
    state["head.weight"], state["head.bias"] = state["head.weight"][:3], state["head.bias"][:3]
    wrong = tmp_path / "three_classes.pth"
    torch.save(state, wrong)
    run = Run(compose_train([*FAST, "quantizer=bnnpp", "pipeline=e2e", "model.protocol.kd=true",
                             f"model.protocol.kd_teacher={wrong}"]), tmp_path / "kd")
    with pytest.raises(UserError, match=r"KD teacher's weights '.*three_classes.pth' do not fit.*head.bias"):
        run.setup()


def test_post_training_binarization_evaluates_the_fp_model_binarized_without_training(tmp_path, fp_checkpoint):
    run = build(tmp_path, "quantizer=ptb", "pipeline=ft", f"pipeline.checkpoint={fp_checkpoint}",
                "model.protocol.normalization=false")
    assert [h["epoch"] for h in run.history] == [0] and run.global_step == 0
    # the reference: timm's FP model with every block Linear replaced by sign(w) * mean|w|, by hand
    torch.manual_seed(0)
    reference = instantiate(compose_train(FAST).model.net)
    reference.load_state_dict(torch.load(fp_checkpoint, weights_only=False))
    with torch.no_grad():
        for name in run.replaced:
            w = reference.get_submodule(name).weight
            w.copy_(torch.sign(w) * w.abs().mean())
    images, labels = run.splits.test.tensors
    with torch.no_grad():
        acc = 100.0 * float((reference.eval()(images).argmax(1) == labels).float().mean())
    assert run.history[0]["test_acc"] == pytest.approx(acc, abs=1e-6)
    assert (tmp_path / "summary.csv").exists() and (tmp_path / "checkpoints" / "best.pt").exists()
