"""The binarization protocols of PC++ §4.3 for vision transformers, read from ``model.protocol``.

  model.protocol.scaling        (1) "the mean s_n of full precision weights … as a scaling factor (can be
                                    thus absorbed into F)": Ŵ = s·F(w/s), s = mean|w| of the layer's latent
                                    weights (true: quantizer.scale=layer, normalize=layer_mean_abs,
                                    scale_in_backward=true, replacing the method's own; false: scale=none,
                                    normalize=none, plain ±1 on the raw w)
  model.protocol.normalization  (2) one more LayerNorm at the end of each binarized attention block
  model.protocol.pretrain       (3) a binarization-aware stage before fine-tuning (src.engine.stages)
  model.protocol.kd             (4) distillation from the full-precision model (src.models.distill)

and which Linear layers are binarized: ``task.blocks`` (indices; null = all) and
``task.components`` (subset of qkv, proj, fc1, fc2; null = all). Models without a ``protocol``
node (the CNNs) are untouched: their surgery is the plain first/last-kept one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn
from omegaconf import DictConfig, OmegaConf

from src.core.errors import UserError
from src.models.distill import frozen_copy
from src.models.transformers import add_attention_norms, block_linears


# PC++ §4.3 protocol (1), on and off, for every binarizing quantizer (the originals' own weight
# statistics, e.g. Bi-Real's per-channel scale or IR-Net's standardisation, are replaced)
PROTOCOL_SCALING = {
    True: {"scale": "layer", "normalize": "layer_mean_abs", "scale_in_backward": True},
    False: {"scale": "none", "normalize": "none", "scale_in_backward": True},
}


@dataclass
class ProtocolSetup:
    quantizer: Any                      # the quantizer config with the protocol's scale
    only: list[str] | None = None       # the layers surgery may replace (None: all eligible)
    teacher: nn.Module | None = None    # frozen FP copy for KD
    norms: list[str] = field(default_factory=list)


def has_fp_weights(cfg: DictConfig) -> bool:
    """Full-precision weights come from the ft pipeline only (src.engine.init: its checkpoint or the
    library's pretrained weights; ft without either is refused there)."""
    return cfg.pipeline.name == "ft"


def apply_protocols(model: nn.Module, cfg: DictConfig, binarizing: bool,
                    teacher_weights: tuple[dict[str, Any], str] | None = None) -> ProtocolSetup:
    """Call after the FP weights are loaded and before surgery: returns what surgery and the
    engine need, and adds the LayerNorms of protocol (2) to ``model`` when binarizing.

    The KD teacher is ``teacher_weights`` (state, source) loaded into a copy of the FP model when
    given (``model.protocol.kd_teacher``, or the library's pretrained weights under E2E:
    src.engine.init.teacher_state), else the FP model as initialised (fine-tuning)."""
    protocol = cfg.model.get("protocol")
    blocks, components = cfg.task.get("blocks"), cfg.task.get("components")
    if protocol is None:
        if blocks is not None or components is not None:
            block_linears(model, blocks, components)  # raises the UserError: not a transformer
        return ProtocolSetup(quantizer=cfg.quantizer)
    only = block_linears(model, blocks, components)
    quantizer = OmegaConf.create(OmegaConf.to_container(cfg.quantizer, resolve=True))
    if quantizer.get("weight") is not None:
        quantizer.merge_with(PROTOCOL_SCALING[bool(protocol.scaling)])
    teacher = None
    if protocol.kd and binarizing:  # a full-precision run has nothing to distil into: it trains as it is
        if teacher_weights is not None:
            teacher = teacher_from(model, *teacher_weights)
        elif has_fp_weights(cfg):
            teacher = frozen_copy(model)
        else:
            raise UserError(
                f"model.protocol.kd=true distils from a full-precision pre-trained model, but this run has "
                f"none (pipeline={cfg.pipeline.name}): pass one with model.protocol.kd_teacher=<fp checkpoint>, "
                f"start from full-precision weights with pipeline=ft, or set model.protocol.kd=false")
    # only the blocks being binarized get the extra LayerNorm (all of them unless task.blocks says otherwise)
    norms = add_attention_norms(model, blocks) if protocol.normalization and binarizing else []
    return ProtocolSetup(quantizer=quantizer, only=only, teacher=teacher, norms=norms)


def teacher_from(model: nn.Module, state: dict[str, Any], source: str) -> nn.Module:
    """A frozen copy of the FP ``model`` holding ``state``: every tensor, the head included (the teacher
    predicts this run's classes), or a UserError naming what does not fit."""
    teacher = frozen_copy(model)
    own = teacher.state_dict()
    wrong = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    extra = sorted(k for k in state if k not in own)
    if wrong or extra:
        raise UserError(
            f"the KD teacher's weights {source!r} do not fit model.net (the teacher is this network in full "
            f"precision, head included): missing or of another shape: {wrong[:5]}{' ...' if len(wrong) > 5 else ''}; "
            f"not in the model: {extra[:5]}{' ...' if len(extra) > 5 else ''}. Pass full-precision weights of this "
            f"model and dataset with model.protocol.kd_teacher=<checkpoint>, or set model.protocol.kd=false")
    teacher.load_state_dict(state, strict=True)
    return teacher
