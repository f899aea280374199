"""Initial weights for the `ft` pipeline: a full-precision checkpoint file or pretrained weights.
The one way any model, CNN or transformer, starts from full-precision weights.

Every tensor of the model must come from the weights, except the classifier head (the model's last
Conv2d/Linear, task.keep_fp's 'last'), which may differ (e.g. 1000 -> 10 classes);
``pipeline.strict=true`` allows no difference, ``pipeline.partial=true`` any (e.g. a ResNet-32 from
a ResNet-20's weights: what matches is loaded, the rest keeps its initialisation, all listed in
results.json and on the console).

A proxbin checkpoint holds the config it was trained with: fine-tuning from weights trained with
another activation (``model.net.activation``, ReLU for BW/FP vs hard tanh for BWA) is warned about,
since the network then starts from features computed by another non-linearity."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from hydra.utils import instantiate

from src.core.checkpoint import load_checkpoint, load_matching, model_state_from
from src.core.errors import UserError
from src.quant.surgery import eligible_layers


def initialise(model: nn.Module, pipeline: Any, model_cfg: Any) -> dict[str, Any] | None:
    """Apply the pipeline's initialisation; e2e keeps the random init and returns None."""
    if pipeline.name == "e2e":
        return None
    warnings: list[str] = []
    if pipeline.get("checkpoint"):
        checkpoint = load_checkpoint(pipeline.checkpoint)
        state = model_state_from(checkpoint)
        source = str(pipeline.checkpoint)
        warnings += activation_warnings(checkpoint, model_cfg, source)
    elif pipeline.get("pretrained"):
        state = pretrained_state(model_cfg)
        source = f"pretrained:{model_cfg.name}"
    else:
        raise UserError(
            "pipeline=ft needs initial weights: set pipeline.checkpoint=/path/to/fp/best.pt (a proxbin "
            "checkpoint or a plain state_dict) or pipeline.pretrained=true"
        )
    report = {"source": source, **load_matching(model, state, may_differ(model, pipeline))}
    return report | ({"warnings": warnings} if warnings else {})


def pretrained_state(model_cfg: Any) -> dict[str, Any]:
    """The model library's pretrained full-precision weights (``model.pretrained_weights``, the
    paper's pinned tag) as a state_dict, or a UserError saying how to get them offline."""
    loader = model_cfg.get("pretrained_weights")
    if loader is None:
        raise UserError(
            f"model {model_cfg.name!r} has no pretrained weights in its library; train a full-precision "
            f"model first and pass its checkpoint: pipeline.checkpoint=<run dir>/checkpoints/best.pt"
        )
    try:
        return instantiate(loader)
    except Exception as exc:
        cause = exc.__cause__ or exc  # the library's own error, not Hydra's wrapper around it
        if isinstance(cause, UserError):  # the loader refused the request (e.g. no such weights)
            raise cause from None
        raise UserError(
            f"pretrained weights for {model_cfg.name!r} could not be loaded ({type(cause).__name__}: "
            f"{str(cause)[:300]}). "
            f"Without network access, put the weights in the library's cache (torchvision: TORCH_HOME; timm: "
            f"HF_HOME, and HF_HUB_OFFLINE=1 skips the network retries) or pass a local file instead: "
            f"pipeline.pretrained=false pipeline.checkpoint=/path/to/weights.pth"
        ) from None


def teacher_state(cfg: Any) -> tuple[dict[str, Any], str] | None:
    """The weights of PC++ §4.3 protocol (4)'s teacher, "full precision pre-trained models", when they
    are not the run's own initial weights: ``model.protocol.kd_teacher`` (a checkpoint file), else
    under ``pipeline=e2e`` the library's pretrained weights of the model (the released FP network,
    e.g. DeiT's). None when the run has no KD, or fine-tunes (the teacher is then the FP model as
    initialised, src.models.protocols). Returns (state, source)."""
    protocol = cfg.model.get("protocol")
    if protocol is None or not protocol.get("kd") or cfg.quantizer.get("weight") is None:
        return None
    if protocol.get("kd_teacher"):
        return model_state_from(load_checkpoint(protocol.kd_teacher)), str(protocol.kd_teacher)
    if cfg.pipeline.name == "e2e":
        if cfg.model.get("pretrained_weights") is None:
            raise UserError(
                f"model.protocol.kd=true under pipeline=e2e distils from the released full-precision "
                f"{cfg.model.name!r}, but its library has no pretrained weights for it: pass a full-precision "
                f"checkpoint of this model with model.protocol.kd_teacher=<run dir>/checkpoints/best.pt, or set "
                f"model.protocol.kd=false")
        return pretrained_state(cfg.model), f"pretrained:{cfg.model.name}"
    return None


def activation_warnings(checkpoint: dict[str, Any], model_cfg: Any, source: str) -> list[str]:
    """A warning when the checkpoint's own config (proxbin checkpoints carry it) names another
    ``model.net.activation`` than this run's; nothing for plain state_dicts."""
    config = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    net = (config.get("model") or {}).get("net") or {}
    trained, used = net.get("activation"), model_cfg.get("net", {}).get("activation")
    if trained is None or used is None or trained == used:
        return []
    return [f"the initial weights '{source}' were trained with model.net.activation={trained}, this run uses "
            f"{used}: every layer now receives the activations of another non-linearity, so fine-tuning starts far "
            f"below the FP network's accuracy and the comparison with a matching FP start is lost. Train the FP "
            f"network with model.net.activation={used} (as the PC++ tables do for BWA/BWAA), or pass "
            f"model.net.activation={trained} if this is intended."]


def report_line(report: dict[str, Any]) -> str:
    """The initial weights in one line: where from, how many tensors were loaded, which were
    skipped (another shape, not in the model) and which kept their initialisation."""
    skipped = report.get("shape_mismatch", []) + report.get("unexpected", [])
    return (f"initial weights from {report['source']}: {report['loaded']} tensors loaded; skipped (another shape or "
            f"not in the model): {_names(skipped)}; left at their initialisation: {_names(report.get('missing', []))}")


def _names(names: list[str], shown: int = 6) -> str:
    if not names:
        return "none"
    return f"{len(names)} ({', '.join(names[:shown])}{', ...' if len(names) > shown else ''})"


def may_differ(model: nn.Module, pipeline: Any) -> list[str] | None:
    """The module names whose weights may be absent from, or shaped otherwise in, the initial
    weights: the classifier head by default, nothing under ``strict``, anything under ``partial``."""
    if pipeline.get("partial", False):
        return None
    if pipeline.get("strict", False):
        return []
    return eligible_layers(model)[-1:]
