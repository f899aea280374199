"""Fabricated data in the real on-disk formats, for smoke-scale sweeps (no download).

CIFAR-10/100: the python pickles of the official archives (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``, ``batches.meta``; ``cifar-100-python/train``, ``test``, ``meta``: dicts of uint8
rows of 3072 = 3x32x32 bytes). ImageNet: the ImageFolder tree ``train/<wnid>/*.JPEG``,
``val/<wnid>/*.JPEG``. The pixels are random: accuracies on this data mean nothing.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR_PER_BATCH = 4      # 5 train batches -> 20 training images
CIFAR_TEST = 16
IMAGENET_CLASSES = 4
IMAGENET_PER_CLASS = {"train": 4, "val": 4}


FABRICATED = ("cifar10", "cifar100", "imagenet")  # the datasets :func:`ensure` writes files for


def dataset_root(root: Path, dataset: str) -> Path:
    """Where :func:`ensure` puts a dataset's files: the CIFAR folders under ``root`` itself, the
    ImageNet tree in ``root/imagenet`` (the ``dataset.splits.root`` of a smoke run)."""
    return Path(root) / "imagenet" if dataset == "imagenet" else Path(root)


def train_images(dataset: str) -> int:
    """The size of the fabricated training split (ImageNet tree or CIFAR pickles)."""
    return IMAGENET_CLASSES * IMAGENET_PER_CLASS["train"] if dataset == "imagenet" else 5 * CIFAR_PER_BATCH


def _dump(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)
    tmp.replace(path)


def write_cifar10(root: Path, seed: int = 0, per_batch: int = CIFAR_PER_BATCH, test_images: int = CIFAR_TEST) -> Path:
    """``per_batch`` images in each of the 5 training files (the official archive: 10,000)."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test_images if name == "test_batch" else per_batch
        _dump(folder / name, {"batch_label": name, "labels": rng.integers(0, 10, n).tolist(),
                              "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                              "filenames": [f"{name}_{i}.png" for i in range(n)]})
    _dump(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072,
                                    "num_cases_per_batch": per_batch})
    return folder


def write_cifar100(root: Path, seed: int = 1) -> Path:
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", 5 * CIFAR_PER_BATCH), ("test", CIFAR_TEST)):
        fine = rng.integers(0, 100, n).tolist()
        _dump(folder / name, {"filenames": [f"{i}.png" for i in range(n)], "batch_label": name, "fine_labels": fine,
                              "coarse_labels": [f // 5 for f in fine],
                              "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)})
    _dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return folder


def write_imagenet(root: Path, seed: int = 2, size: int = 40) -> Path:
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, per_class in IMAGENET_PER_CLASS.items():
        for c in range(IMAGENET_CLASSES):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"n{c:08d}_{i}.JPEG", format="JPEG")
    return root


def ensure(root: Path, datasets: set[str]) -> None:
    """Write the fabricated files of each dataset under ``root`` unless they are there already."""
    root = Path(root)
    if "cifar10" in datasets and not (root / "cifar-10-batches-py" / "test_batch").is_file():
        write_cifar10(root)
    if "cifar100" in datasets and not (root / "cifar-100-python" / "test").is_file():
        write_cifar100(root)
    if "imagenet" in datasets and not (dataset_root(root, "imagenet") / "val").is_dir():
        write_imagenet(dataset_root(root, "imagenet"))
