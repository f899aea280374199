"""The CIFAR loaders read files written here in the exact on-disk formats of the official
python archives (cifar-10-batches-py / cifar-100-python: pickled dicts of uint8 rows)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_train
from src.data.cifar import build_cifar
from src.core.errors import UserError
from src.data.splits import CIFAR_MEAN, CIFAR_STD


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 4, rng=np.random.default_rng(0)) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        target = rng.integers(0, 10, size=per_batch).tolist()
        # The official files are Python-2 pickles whose str keys load as str under encoding="latin1".
        _pickle(folder / name, {"batch_label": name, "labels": target, "data": data,
                                "filenames": [f"{name}_{i}.png" for i in range(per_batch)]})
        images.append(data)
        labels.append(target)
    _pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)],
                                      "num_vis": 3072, "num_cases_per_batch": per_batch})
    return {"train_data": np.concatenate(images[:5]), "train_labels": np.concatenate(labels[:5]),
            "test_data": images[5], "test_labels": np.array(labels[5])}


def write_cifar100(root: Path, n_train: int = 6, n_test: int = 3, rng=np.random.default_rng(1)) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        _pickle(folder / name, {"filenames": [f"{i}.png" for i in range(n)], "batch_label": name,
                                "fine_labels": fine, "coarse_labels": [f // 5 for f in fine], "data": data})
        out[f"{name}_data"], out[f"{name}_labels"] = data, np.array(fine)
    _pickle(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                              "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return out


def _expected_tensor(row: np.ndarray) -> torch.Tensor:
    image = torch.tensor(row.reshape(3, 32, 32), dtype=torch.float32) / 255.0
    return (image - torch.tensor(CIFAR_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR_STD).view(3, 1, 1)


def test_cifar10_reads_the_pickle_batches(tmp_path):
    written = write_cifar10(tmp_path)
    splits = build_cifar("cifar10", root=str(tmp_path), augment=False, download=False)
    assert (len(splits.train), len(splits.test), splits.num_classes) == (20, 4, 10)
    for i in (0, 7, 19):
        image, label = splits.train[i]
        assert label == written["train_labels"][i]
        torch.testing.assert_close(image, _expected_tensor(written["train_data"][i]), atol=1e-6, rtol=0)
    image, label = splits.test[3]
    assert label == written["test_labels"][3]
    torch.testing.assert_close(image, _expected_tensor(written["test_data"][3]), atol=1e-6, rtol=0)


def test_cifar100_reads_fine_labels_and_resizes(tmp_path):
    written = write_cifar100(tmp_path)
    splits = build_cifar("cifar100", root=str(tmp_path), image_size=48, augment=True, download=False)
    assert (len(splits.train), len(splits.test), splits.num_classes) == (6, 3, 100)
    image, label = splits.train[2]
    assert image.shape == (3, 48, 48) and label == written["train_labels"][2]
    assert splits.test[1][1] == written["test_labels"][1]


def test_subsets_are_fixed(tmp_path):
    write_cifar10(tmp_path)
    a = build_cifar("cifar10", root=str(tmp_path), augment=False, download=False, train_subset=5)
    b = build_cifar("cifar10", root=str(tmp_path), augment=False, download=False, train_subset=5)
    assert len(a.train) == 5 and a.train.indices == b.train.indices


def test_missing_files_say_where_they_are_expected(tmp_path):
    with pytest.raises(UserError) as err:
        build_cifar("cifar100", root=str(tmp_path / "nowhere"), download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-100-python") in message and "dataset.splits.root" in message


def test_failed_download_is_reported_not_raised(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(UserError, match="the download failed: OSError: network is unreachable"):
        build_cifar("cifar10", root=str(tmp_path), download=True)


def _deit_splits(root: Path, *overrides: str):
    cfg = compose_train(["dataset=cifar10", "augment=deit", "model=vit_tiny", f"dataset.splits.root={root}",
                         "dataset.splits.download=false", *overrides])
    return instantiate(cfg.dataset.splits)


def test_deit_recipe_builds_the_training_transform_with_timm_and_keeps_evaluation(tmp_path):
    """augment=deit: timm's create_transform with DeiT's values, at the model's resolution and the
    CIFAR normalisation of the evaluation transform, which stays as it was."""
    data = write_cifar10(tmp_path)
    splits = _deit_splits(tmp_path)
    crop, flip, rand_augment, _, normalize, erase = splits.train.transform.transforms
    assert (type(crop).__name__, crop.size, crop.scale, crop.interpolation.value) == \
        ("RandomResizedCropAndInterpolation", (32, 32), (0.08, 1.0), "bicubic")
    assert flip.p == 0.5 and rand_augment.num_layers == 2 and len(rand_augment.ops) == 15  # rand-m9-mstd0.5-inc1
    assert {(op.magnitude, op.magnitude_std) for op in rand_augment.ops} == {(9, 0.5)}
    assert "PosterizeIncreasing" in {op.name for op in rand_augment.ops}                  # inc1
    torch.testing.assert_close(normalize.mean, torch.tensor(CIFAR_MEAN))
    torch.testing.assert_close(normalize.std, torch.tensor(CIFAR_STD))
    assert (erase.probability, erase.mode, erase.max_count) == (0.25, "pixel", 1)
    torch.manual_seed(0)
    assert splits.train[0][0].shape == (3, 32, 32) and splits.train[0][1] == data["train_labels"][0]
    assert torch.equal(splits.test[0][0], _expected_tensor(data["test_data"][0]))   # evaluation unchanged
    plain = _deit_splits(tmp_path, "dataset.splits.augment=false")                  # no augmentation at all
    assert torch.equal(plain.train[0][0], _expected_tensor(data["train_data"][0]))
