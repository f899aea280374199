"""torchvision ImageNet models. Pretrained weights are loaded by the `ft` pipeline, not here."""

from __future__ import annotations

import torch.nn as nn
from torchvision import models

from src.models.activations import replace_relu


def resnet50(num_classes: int = 1000, activation: str = "relu") -> nn.Module:
    return replace_relu(models.resnet50(weights=None, num_classes=num_classes), activation)


def pretrained_state_dict(name: str) -> dict:
    """torchvision's default ImageNet weights for ``name`` (downloaded into the torch hub cache)."""
    weights = models.get_model_weights(name).DEFAULT
    return weights.get_state_dict(progress=False)
