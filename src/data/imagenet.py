"""ImageNet-1K (or any ImageFolder tree) with the standard ResNet/DeiT evaluation crop."""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets, transforms

from src.data.splits import IMAGENET_MEAN, IMAGENET_STD, Splits, TransformFactory, take_subset
from src.core.errors import UserError


def imagenet_transforms(image_size: int, train_transform: TransformFactory | None = None
                        ) -> tuple[transforms.Compose, transforms.Compose]:
    """Random resized crop + flip for training (or the ``train_transform`` factory's recipe, e.g.
    DeiT's), resize to image_size/0.875 + centre crop for evaluation; ImageNet normalisation."""
    normalize = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if train_transform is not None:
        train = train_transform(input_size=image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    else:
        train = transforms.Compose([transforms.RandomResizedCrop(image_size, antialias=True),
                                    transforms.RandomHorizontalFlip(), *normalize])
    resize = int(round(image_size / 0.875))  # 256 for 224: the usual centre-crop ratio
    test = transforms.Compose([transforms.Resize(resize, antialias=True), transforms.CenterCrop(image_size), *normalize])
    return train, test


def build_imagenet(
    root: str = "data/imagenet",
    image_size: int = 224,
    train_subset: int | None = None,
    test_subset: int | None = None,
    train_transform: TransformFactory | None = None,
) -> Splits:
    root_path = Path(root).expanduser()
    missing = [s for s in ("train", "val") if not (root_path / s).is_dir()]
    if missing:
        raise UserError(
            f"ImageNet was not found: '{root_path}' lacks the folder(s) {missing}. Expected the ImageFolder "
            f"layout <root>/train/<class>/<image> and <root>/val/<class>/<image>; set dataset.splits.root=... "
            f"(or PROXBIN_IMAGENET) to the folder that holds train/ and val/."
        )
    train_tf, test_tf = imagenet_transforms(image_size, train_transform)
    train = datasets.ImageFolder(str(root_path / "train"), transform=train_tf)
    test = datasets.ImageFolder(str(root_path / "val"), transform=test_tf)
    if train.classes != test.classes:
        raise UserError(f"ImageNet train/ and val/ under '{root_path}' hold different class folders")
    return Splits(take_subset(train, train_subset), take_subset(test, test_subset), len(train.classes), image_size)
