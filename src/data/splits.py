"""What every dataset builder returns, plus the shared normalisation and subset helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import Dataset, Subset

from src.data.on_device import ImageTensors

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Splits:
    """``train_tensors`` / ``test_tensors``: the same splits as tensors for the on-device pipeline
    (src.data.on_device), where the builder can prepare them exactly as its transforms do; else None."""

    train: Dataset
    test: Dataset
    num_classes: int
    image_size: int
    train_tensors: ImageTensors | None = None
    test_tensors: ImageTensors | None = None


# A train-transform factory (configs/augment/, e.g. timm.data.create_transform with DeiT's values):
# the builder calls it with its image size and normalisation, factory(input_size=, mean=, std=).
TransformFactory = Callable[..., Callable]


def take_subset(dataset: Dataset, size: int | None, seed: int = 0) -> Dataset:
    """A fixed random subset of ``size`` items (the same for every run), or the dataset itself."""
    if size is None or size >= len(dataset):
        return dataset
    if size <= 0:
        raise ValueError(f"subset size must be positive, got {size}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:size].tolist())
