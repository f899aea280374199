"""ImageNet through torchvision's ImageFolder on a tiny tree of real JPEG files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.imagenet import build_imagenet
from src.core.errors import UserError
from src.data.splits import IMAGENET_MEAN, IMAGENET_STD


def write_tree(root, classes=("n01440764", "n01443537", "n01484850"), per_class=2):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(40 + i, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{c}_{i}.JPEG", format="JPEG")


def test_imagefolder_tree_loads_with_crops(tmp_path):
    write_tree(tmp_path)
    splits = build_imagenet(root=str(tmp_path), image_size=32)
    assert (len(splits.train), len(splits.test), splits.num_classes) == (6, 6, 3)
    image, label = splits.test[5]
    assert image.shape == (3, 32, 32) and label == 2
    assert splits.train[0][0].shape == (3, 32, 32)


def test_missing_val_folder_is_named(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match=r"lacks the folder\(s\) \['val'\]"):
        build_imagenet(root=str(tmp_path))


def test_train_transform_factory_gets_the_image_size_and_imagenet_normalisation(tmp_path):
    write_tree(tmp_path)
    calls = []

    def factory(**kwargs):
        calls.append(kwargs)
        return lambda image: "augmented"

    splits = build_imagenet(root=str(tmp_path), image_size=32, train_transform=factory)
    assert calls == [{"input_size": 32, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}]
    assert splits.train[0][0] == "augmented" and splits.test[0][0].shape == (3, 32, 32)
