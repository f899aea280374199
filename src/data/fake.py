"""Random images of the right shape (torchvision FakeData) for speed checks."""

from __future__ import annotations

from torchvision import datasets, transforms

from src.data.splits import Splits, TransformFactory


def build_fake(num_classes: int = 10, image_size: int = 32, train_size: int = 1024, test_size: int = 256,
               train_transform: TransformFactory | None = None) -> Splits:
    """Unnormalised images in [0, 1]; ``train_transform`` (e.g. augment=deit) augments the training
    images, built at ``image_size`` with the identity normalisation (mean 0, std 1)."""
    to_tensor = transforms.ToTensor()
    shape = (3, image_size, image_size)
    train_tf = to_tensor if train_transform is None else \
        train_transform(input_size=image_size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return Splits(
        train=datasets.FakeData(train_size, shape, num_classes, transform=train_tf, random_offset=0),
        test=datasets.FakeData(test_size, shape, num_classes, transform=to_tensor, random_offset=train_size),
        num_classes=num_classes,
        image_size=image_size,
    )
