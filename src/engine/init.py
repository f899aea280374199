"""Initial weights for the `ft` pipeline: a full-precision checkpoint file or pretrained weights.
The one way any model, CNN or transformer, starts from full-precision weights.

Every tensor of the model must come from the weights, except the classifier head (the model's last
Conv2d/Linear, task.keep_fp's 'last'), which may differ (e.g. 1000 -> 10 classes);
``pipeline.strict=true`` allows no difference, ``pipeline.partial=true`` any (e.g. a ResNet-32 from
a ResNet-20's weights: what matches is loaded, the rest keeps its initialisation, all listed in
results.json)."""

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
    if pipeline.get("checkpoint"):
        state = model_state_from(load_checkpoint(pipeline.checkpoint))
        source = str(pipeline.checkpoint)
    elif pipeline.get("pretrained"):
        loader = model_cfg.get("pretrained_weights")
        if loader is None:
            raise UserError(
                f"model {model_cfg.name!r} has no pretrained weights in its library; train a full-precision "
                f"model first and pass its checkpoint: pipeline.checkpoint=<run dir>/checkpoints/best.pt"
            )
        try:
            state = instantiate(loader)
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
        source = f"pretrained:{model_cfg.name}"
    else:
        raise UserError(
            "pipeline=ft needs initial weights: set pipeline.checkpoint=/path/to/fp/best.pt (a proxbin "
            "checkpoint or a plain state_dict) or pipeline.pretrained=true"
        )
    return {"source": source, **load_matching(model, state, may_differ(model, pipeline))}


def may_differ(model: nn.Module, pipeline: Any) -> list[str] | None:
    """The module names whose weights may be absent from, or shaped otherwise in, the initial
    weights: the classifier head by default, nothing under ``strict``, anything under ``partial``."""
    if pipeline.get("partial", False):
        return None
    if pipeline.get("strict", False):
        return []
    return eligible_layers(model)[-1:]
