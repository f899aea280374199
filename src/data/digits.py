"""scikit-learn's handwritten digits as a CIFAR-shaped dataset: the embedded demo data.

The 1,797 8x8 grey-level scans (values 0..16) of the UCI "Optical Recognition of Handwritten
Digits" set ship inside scikit-learn, so the demo trains on real data with no download.
Images are scaled to [0, 1], upsampled bilinearly to ``image_size`` and repeated over 3
channels; the split is stratified and fixed by ``split_seed``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from src.core.errors import UserError
from src.data.splits import Splits, TransformFactory, take_subset


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def build_digits(image_size: int = 32, test_fraction: float = 0.2, split_seed: int = 0,
                 train_transform: TransformFactory | None = None, train_subset: int | None = None,
                 test_subset: int | None = None) -> Splits:
    """``train_transform`` must stay null: the digits are tensors prepared once, and image
    augmentation recipes (augment=deit) act on images as they are loaded. ``train_subset`` /
    ``test_subset``: a fixed random subset of each split, as for the other datasets."""
    from sklearn.datasets import load_digits

    if train_transform is not None:
        raise UserError("augment= sets dataset.splits.train_transform, but the digits are prepared tensors that "
                        "no image transform acts on; drop augment= for dataset=digits, or use dataset=cifar10, "
                        "cifar100, imagenet or fake")

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"dataset.splits.test_fraction must lie in (0, 1), got {test_fraction}")
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = ((images - 0.5) / 0.5).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = _stratified_split(digits.target, test_fraction, split_seed)
    return Splits(
        train=take_subset(TensorDataset(images[train_idx], labels[train_idx]), train_subset),
        test=take_subset(TensorDataset(images[test_idx], labels[test_idx]), test_subset),
        num_classes=10,
        image_size=image_size,
    )
