"""CIFAR-10/100 through torchvision, with a clear message when the files are not there."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms

from src.data.on_device import ImageTensors
from src.data.splits import CIFAR_MEAN, CIFAR_STD, Splits, TransformFactory, take_subset
from src.core.errors import UserError

def _presence_checked(base: type) -> type:
    """torchvision re-hashes every batch file (MD5) on each start; with the per-file checksums set
    to None it only requires the files to be present. The downloaded archive is still MD5-checked."""
    return type(base.__name__, (base,), {
        "train_list": [[name, None] for name, _ in base.train_list],
        "test_list": [[name, None] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": None},
    })


CIFAR10 = _presence_checked(datasets.CIFAR10)
CIFAR100 = _presence_checked(datasets.CIFAR100)

VARIANTS = {
    "cifar10": (CIFAR10, "cifar-10-batches-py", 10),
    "cifar100": (CIFAR100, "cifar-100-python", 100),
}


def cifar_transforms(image_size: int, augment: bool, train_transform: TransformFactory | None = None
                     ) -> tuple[transforms.Compose, transforms.Compose]:
    """Standard CIFAR recipe (random crop with 4-pixel padding, flip); resize for other resolutions.
    With ``train_transform`` (and ``augment``) the training images get that recipe instead, built
    at ``image_size`` with the CIFAR normalisation of the evaluation transform."""
    resize = [] if image_size == 32 else [transforms.Resize(image_size, antialias=True)]
    normalize = [transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)]
    test = transforms.Compose(resize + normalize)
    if augment and train_transform is not None:
        return train_transform(input_size=image_size, mean=CIFAR_MEAN, std=CIFAR_STD), test
    augmentation = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    return transforms.Compose(augmentation + resize + normalize), test


def cifar_tensors(dataset: Dataset, augment: bool) -> ImageTensors:
    """A CIFAR dataset (or a Subset of one) as tensors for src.data.on_device: its uint8 images
    (N, 3, 32, 32, a view of torchvision's (N, 32, 32, 3) array until indexed), labels, the CIFAR
    normalisation and, with ``augment``, the standard crop and flip."""
    index = None
    if isinstance(dataset, Subset):
        dataset, index = dataset.dataset, torch.as_tensor(dataset.indices, dtype=torch.int64)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    if index is not None:
        images, labels = images[index], labels[index]
    return ImageTensors(images, labels, CIFAR_MEAN, CIFAR_STD, augment)


def _load(cls, root: Path, train: bool, transform, download: bool, folder: str):
    try:
        return cls(str(root), train=train, transform=transform, download=False)
    except RuntimeError:
        pass  # torchvision: "Dataset not found or corrupted"
    reason = "dataset.splits.download=false"
    if download:
        try:
            return cls(str(root), train=train, transform=transform, download=True)
        except Exception as exc:  # no network, proxy, truncated archive...
            reason = f"the download failed: {type(exc).__name__}: {exc}"
    raise UserError(
        f"{cls.__name__} files were not found under '{root / folder}' and {reason}. "
        f"Place the python version of the dataset there (the folder '{folder}' extracted from the "
        f"official archive), or point the run at it with dataset.splits.root=/path/containing/{folder} "
        f"(or the PROXBIN_DATA environment variable)."
    )


def build_cifar(
    variant: str = "cifar10",
    root: str = "data",
    image_size: int = 32,
    augment: bool = True,
    download: bool = True,
    train_subset: int | None = None,
    test_subset: int | None = None,
    train_transform: TransformFactory | None = None,
) -> Splits:
    """``augment``: augment the training images, with the standard recipe or, when given, the
    ``train_transform`` factory (augment=deit); false: train on the evaluation transform. At 32 px
    without ``train_transform`` the splits also come as tensors for the on-device pipeline."""
    if variant not in VARIANTS:
        raise UserError(f"dataset variant {variant!r} is not one of {sorted(VARIANTS)}")
    cls, folder, num_classes = VARIANTS[variant]
    train_tf, test_tf = cifar_transforms(image_size, augment, train_transform)
    root_path = Path(root).expanduser()
    train = _load(cls, root_path, True, train_tf, download, folder)
    test = _load(cls, root_path, False, test_tf, download, folder)
    train, test = take_subset(train, train_subset), take_subset(test, test_subset)
    if image_size != 32 or (augment and train_transform is not None):
        return Splits(train, test, num_classes, image_size)  # a resize or a timm recipe: PIL transforms only
    return Splits(train, test, num_classes, image_size, train_tensors=cifar_tensors(train, augment),
                  test_tensors=cifar_tensors(test, augment=False))
