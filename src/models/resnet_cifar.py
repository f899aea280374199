"""ResNets for 32x32 inputs.

``resnet20/32/44/56``: He et al. (2016, §4.2) CIFAR ResNets, depth 6n+2 with n basic blocks in
each of 3 stages of 16, 32, 64 channels. Shortcut 'A' (the paper's CIFAR choice, parameter-free:
stride-2 subsampling and zero-padded channels) or 'B' (1x1 conv + BN projection).
``resnet18``: the common CIFAR variant of the ImageNet ResNet-18 (3x3 stem, no max-pool, 4 stages
of 2 blocks, 64..512 channels, projection shortcuts), as used by ConQ Table 2.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from src.models.activations import ACTIVATIONS, build_activation

SHORTCUTS = ("A", "B")


class PadShortcut(nn.Module):
    """Option A: subsample by the stride and append zero channels."""

    def __init__(self, out_channels: int, stride: int):
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        missing = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, missing // 2, missing - missing // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str, activation: str = "relu"):
        super().__init__()
        self.act = build_activation(activation)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: list[int], widths: list[int], num_classes: int = 10, shortcut: str = "A",
                 activation: str = "relu"):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut {shortcut!r} is not one of {SHORTCUTS}")
        self.act = build_activation(activation)
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_channels = [], widths[0]
        for i, (n, width) in enumerate(zip(blocks_per_stage, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_channels, width, stride, shortcut, activation))
                in_channels = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def _he_cifar(depth: int, num_classes: int, shortcut: str, activation: str) -> CifarResNet:
    n = (depth - 2) // 6
    return CifarResNet([n, n, n], [16, 32, 64], num_classes, shortcut, activation)


def resnet20(num_classes: int = 10, shortcut: str = "A", activation: str = "relu") -> CifarResNet:
    return _he_cifar(20, num_classes, shortcut, activation)


def resnet32(num_classes: int = 10, shortcut: str = "A", activation: str = "relu") -> CifarResNet:
    return _he_cifar(32, num_classes, shortcut, activation)


def resnet44(num_classes: int = 10, shortcut: str = "A", activation: str = "relu") -> CifarResNet:
    return _he_cifar(44, num_classes, shortcut, activation)


def resnet56(num_classes: int = 10, shortcut: str = "A", activation: str = "relu") -> CifarResNet:
    return _he_cifar(56, num_classes, shortcut, activation)


def resnet18(num_classes: int = 10, activation: str = "relu") -> CifarResNet:
    return CifarResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes, shortcut="B", activation=activation)
