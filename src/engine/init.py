"""Initial weights for the `ft` pipeline: a full-precision checkpoint file or pretrained weights."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from hydra.utils import instantiate

from src.core.checkpoint import load_checkpoint, model_state_from
from src.core.errors import UserError


def load_matching(model: nn.Module, state: dict[str, Any], strict: bool) -> dict[str, list[str]]:
    """Load every tensor whose name and shape match; with ``strict`` any mismatch is an error.
    Returns the skipped (shape differs / unexpected) and missing names, for results.json."""
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    report = {
        "loaded": len(matched),
        "shape_mismatch": sorted(k for k in state if k in own and own[k].shape != state[k].shape),
        "unexpected": sorted(k for k in state if k not in own),
        "missing": sorted(k for k in own if k not in matched),
    }
    if not matched or (strict and (report["shape_mismatch"] or report["unexpected"] or report["missing"])):
        raise UserError(
            f"the fine-tuning weights do not fit this model: {len(matched)} tensors match, "
            f"shape mismatches {report['shape_mismatch'][:5]}, unexpected {report['unexpected'][:5]}, "
            f"missing {report['missing'][:5]}. Check that pipeline.checkpoint was trained with the same model "
            f"config (or set pipeline.strict=false to skip a differing classifier head)."
        )
    model.load_state_dict(matched, strict=False)
    return report


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
            raise UserError(
                f"pretrained weights for {model_cfg.name!r} could not be loaded ({type(exc).__name__}: {exc}). "
                f"Without network access, put the weight file in the torch hub cache (TORCH_HOME) or pass a "
                f"local file with pipeline.checkpoint=/path/to/weights.pth"
            ) from None
        source = f"pretrained:{model_cfg.name}"
    else:
        raise UserError(
            "pipeline=ft needs initial weights: set pipeline.checkpoint=/path/to/fp/best.pt (a proxbin "
            "checkpoint or a plain state_dict) or pipeline.pretrained=true"
        )
    return {"source": source, **load_matching(model, state, bool(pipeline.get("strict", False)))}
