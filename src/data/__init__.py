"""Datasets: each builder returns :class:`Splits` (train and test datasets of (image, label)); the
configs of configs/dataset/ name them as ``splits._target_``."""

from src.data.cifar import build_cifar
from src.data.digits import build_digits
from src.data.fake import build_fake
from src.data.imagenet import build_imagenet
from src.data.splits import Splits

__all__ = ["Splits", "build_cifar", "build_digits", "build_fake", "build_imagenet"]
