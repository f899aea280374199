"""Vision transformers from timm (ViT, DeiT, Swin, NesT) and the parts binarization acts on.

A *transformer block* is any module with an ``attn`` and an ``mlp`` child (timm's ViT/DeiT
``Block``, Swin's ``SwinTransformerBlock``, NesT's ``TransformerLayer``), numbered in registration
order across stages. Its binarizable *components* are the Linear layers ``attn.qkv``,
``attn.proj``, ``mlp.fc1`` and ``mlp.fc2`` (PC++ §4.3); patch embedding, patch merging / pooling
and the classifier head lie outside the blocks and stay in full precision.
"""

from __future__ import annotations

from typing import Any, Iterable

import timm
import torch
import torch.nn as nn
from omegaconf import ListConfig

from src.core.errors import UserError

COMPONENTS = {"qkv": "attn.qkv", "proj": "attn.proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def timm_model(arch: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """``timm.create_model(arch, num_classes=..., **kwargs)`` with random weights; ``arch`` may carry
    a pretrained tag (``<model>.<tag>``), which names the weights but does not load them:
    full-precision weights come from the pipeline (``pipeline=ft pipeline.checkpoint=<file>`` or
    ``pipeline.pretrained=true``, src.engine.init), as for every other model."""
    kwargs = {k: tuple(v) if isinstance(v, (list, tuple, ListConfig)) else v for k, v in kwargs.items()}
    if not timm.models.is_model(arch.partition(".")[0]):
        raise UserError(f"model.net.arch={arch!r} is not a timm model; see timm.list_models(), e.g. "
                        f"vit_base_patch16_224, deit_tiny_patch16_224, swin_tiny_patch4_window7_224, nest_tiny_jx")
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)


def check_pretrained_tag(arch: str) -> None:
    """Refuse, before any download, a request for timm weights that are not pinned or do not exist:
    ``arch`` must be ``<model>.<tag>`` and timm's pretrained config of that tag must have weights
    (a URL, file or Hugging Face hub id). timm itself only logs "No pretrained weights exist for
    this model. Using random initialization." and trains from random weights (e.g. ``nest_tiny``,
    whose only tag is ``untrained``; NesT-T's weights are ``nest_tiny_jx.goog_in1k``)."""
    name, _, tag = arch.partition(".")
    if not timm.models.is_model(name):
        raise UserError(f"model.net.arch={arch!r} is not a timm model; see timm.list_models()")
    valid = timm.list_pretrained(f"{name}.*") or timm.list_pretrained(f"{name}*")
    choices = ", ".join(valid) if valid else "none in timm"
    if not tag:
        default = timm.models.get_pretrained_cfg(name).tag
        raise UserError(
            f"model.net.arch={arch!r} names no pretrained tag, so timm would load its current default "
            f"({name}.{default}), which need not be the weights the paper used. Pin the weights in the model "
            f"config (model.tag=<tag>, arch <model>.<tag>); timm's weights for it: {choices}")
    try:
        cfg = timm.models.get_pretrained_cfg(arch, allow_unregistered=False)
    except RuntimeError:  # timm: "Invalid pretrained tag (...) for ..."
        cfg = None
    if cfg is None or not cfg.has_weights:
        raise UserError(
            f"pipeline.pretrained=true asks for timm's weights {arch!r}, but timm has none under that name: it "
            f"would start from random initialization. Choose a tag with weights (model.tag=<tag>, or "
            f"model.net.arch=<model>.<tag>): {choices}; or pass full-precision weights with "
            f"pipeline.pretrained=false pipeline.checkpoint=/path/to/weights.pth")


def timm_pretrained_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """timm's pretrained weights ``arch`` = ``<model>.<tag>`` as a state_dict (for ``pipeline=ft
    pipeline.pretrained=true``); :func:`check_pretrained_tag` runs first, so a request that would
    get random weights stops with a UserError and nothing is downloaded."""
    check_pretrained_tag(arch)
    return timm.create_model(arch, pretrained=True).state_dict()


def transformer_blocks(model: nn.Module) -> list[str]:
    """Names of the transformer blocks (modules with ``attn`` and ``mlp``), in forward order."""
    return [name for name, m in model.named_modules()
            if isinstance(getattr(m, "attn", None), nn.Module) and isinstance(getattr(m, "mlp", None), nn.Module)]


def block_linears(model: nn.Module, blocks: Iterable[int] | None = None,
                  components: Iterable[str] | None = None) -> list[str]:
    """The Linear layers to binarize: ``components`` (default all of qkv, proj, fc1, fc2) of the
    blocks whose index is in ``blocks`` (default all). Raises UserError on bad indices/names."""
    names = transformer_blocks(model)
    if not names:
        raise UserError(
            f"task.blocks / task.components select transformer blocks, but {type(model).__name__} has none "
            f"(no module with `attn` and `mlp`); leave them null for CNNs")
    chosen = list(range(len(names))) if blocks is None else [int(b) for b in blocks]
    bad = [b for b in chosen if not 0 <= b < len(names)]
    if bad:
        raise UserError(f"task.blocks={list(blocks)} has indices {bad} outside 0..{len(names) - 1} "
                        f"(this model has {len(names)} transformer blocks)")
    parts = list(COMPONENTS) if components is None else list(components)
    unknown = [c for c in parts if c not in COMPONENTS]
    if unknown:
        raise UserError(f"task.components={parts} has {unknown}; valid components are {list(COMPONENTS)}")
    out = []
    for b in chosen:
        for c in parts:
            name = f"{names[b]}.{COMPONENTS[c]}"
            if isinstance(model.get_submodule(name), nn.Linear):
                out.append(name)
    return out


def _post_attention_norm(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    return module.post_norm(output)


def add_attention_norms(model: nn.Module, blocks: Iterable[int] | None = None) -> list[str]:
    """Protocol (2) of PC++ §4.3: one more LayerNorm at the end of each attention block — applied
    to the attention module's output (after its projection, before the residual add). Registered
    as ``<block>.attn.post_norm`` (trained with the rest) and applied by a forward hook, so timm's
    own module names, and hence checkpoints, are unchanged. Only the blocks with indices in
    ``blocks`` (default all) get one. Returns the new modules' names."""
    added = []
    names = transformer_blocks(model)
    for name in (names if blocks is None else [names[int(b)] for b in blocks]):
        attn = model.get_submodule(name).attn
        dim = _attention_dim(attn)
        ref = next(attn.parameters())
        attn.post_norm = nn.LayerNorm(dim, device=ref.device, dtype=ref.dtype)
        attn.register_forward_hook(_post_attention_norm)
        added.append(f"{name}.attn.post_norm")
    return added


def _attention_dim(attn: nn.Module) -> int:
    proj = getattr(attn, "proj", None)
    if isinstance(proj, nn.Linear):
        return proj.out_features
    raise UserError(f"cannot add a LayerNorm after {type(attn).__name__}: it has no Linear `proj`")
