"""Random images of the right shape (torchvision FakeData) for speed checks."""

from __future__ import annotations

from torchvision import datasets, transforms

from src.data.splits import Splits


def build_fake(num_classes: int = 10, image_size: int = 32, train_size: int = 1024, test_size: int = 256) -> Splits:
    to_tensor = transforms.ToTensor()
    shape = (3, image_size, image_size)
    return Splits(
        train=datasets.FakeData(train_size, shape, num_classes, transform=to_tensor, random_offset=0),
        test=datasets.FakeData(test_size, shape, num_classes, transform=to_tensor, random_offset=train_size),
        num_classes=num_classes,
        image_size=image_size,
    )
