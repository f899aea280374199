"""VGG-Small for CIFAR (Zhang et al., LQ-Nets, 2018; used by ConQ Table 2):
conv(128)-conv(128)-pool-conv(256)-conv(256)-pool-conv(512)-conv(512)-pool-fc, with BN + ReLU
(hard tanh under binary activations, see src/models/activations.py)."""

from __future__ import annotations

import torch.nn as nn

from src.models.activations import build_activation


def _conv_bn(in_channels: int, out_channels: int, activation: str) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
            build_activation(activation)]


def vgg_small(num_classes: int = 10, activation: str = "relu") -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for width in (128, 256, 512):
        layers += _conv_bn(in_channels, width, activation) + _conv_bn(width, width, activation) + [nn.MaxPool2d(2)]
        in_channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 4 * 4, num_classes))
