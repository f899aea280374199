"""Initial weights for the `ft` pipeline: a full-precision checkpoint file or pretrained weights.
The one way any model, CNN or transformer, starts from full-precision weights."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from hydra.utils import instantiate

from src.core.checkpoint import load_checkpoint, load_matching, model_state_from
from src.core.errors import UserError


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
    return {"source": source, **load_matching(model, state, bool(pipeline.get("strict", False)))}
