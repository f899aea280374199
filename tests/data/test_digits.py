"""The embedded demo data: scikit-learn's real handwritten digits in CIFAR shape."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from src.core.errors import UserError
from src.data.digits import build_digits


def test_digits_are_the_real_scans_upsampled():
    splits = build_digits(image_size=32, test_fraction=0.2, split_seed=0)
    assert len(splits.train) + len(splits.test) == 1797 and splits.num_classes == 10
    image, label = splits.train[0]
    assert image.shape == (3, 32, 32) and torch.equal(image[0], image[2])
    raw = load_digits()
    # the split is a partition of the 1,797 images, stratified: every class is in the test split
    test_labels = splits.test.tensors[1]
    assert set(test_labels.tolist()) == set(range(10))
    assert abs(len(splits.test) - 0.2 * 1797) <= 10
    assert sorted(splits.train.tensors[1].tolist() + test_labels.tolist()) == sorted(raw.target.tolist())


def test_split_is_fixed_by_seed():
    a, b = build_digits(split_seed=3), build_digits(split_seed=3)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[1], build_digits(split_seed=4).test.tensors[1])


def test_an_image_augmentation_recipe_is_refused_for_the_prepared_tensors():
    with pytest.raises(UserError, match="the digits are prepared tensors.*drop augment= for dataset=digits"):
        build_digits(train_transform=lambda **kwargs: None)


def test_subsets_are_fixed_parts_of_each_split():
    whole, part = build_digits(), build_digits(train_subset=100, test_subset=16)
    assert (len(part.train), len(part.test)) == (100, 16)
    train = {tuple(whole.train[i][0].flatten()[:64].tolist()) for i in range(len(whole.train))}
    assert all(tuple(part.train[i][0].flatten()[:64].tolist()) in train for i in range(100))   # drawn from train only
    again = build_digits(train_subset=100, test_subset=16)
    assert all(torch.equal(part.test[i][0], again.test[i][0]) for i in range(16))            # the same every run
