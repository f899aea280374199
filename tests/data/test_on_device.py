"""The on-device pipeline gives torchvision's pixels for a given crop offset and flip, draws the
offsets uniformly over the 9×9 positions and the flip with p = ½, and follows the given order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from src.data.cifar import cifar_transforms
from src.data.on_device import PADDING, DeviceBatches, ImageTensors, crop_and_flip, normalize
from src.data.splits import CIFAR_MEAN, CIFAR_STD


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("flip", [False, True])
def test_crop_flip_and_normalize_give_torchvisions_pixels_for_every_offset(monkeypatch, flip):
    """The production train transform (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
    Normalize) with its offset fixed through RandomCrop.get_params and its flip through p."""
    images = _images(3)
    train, _ = cifar_transforms(32, augment=True)
    crop, horizontal_flip, _, _ = train.transforms
    assert isinstance(crop, transforms.RandomCrop) and crop.padding == PADDING
    horizontal_flip.p = 1.0 if flip else 0.0
    for top in range(2 * PADDING + 1):
        for left in range(2 * PADDING + 1):
            monkeypatch.setattr(transforms.RandomCrop, "get_params", staticmethod(lambda img, size: (top, left, 32, 32)))
            expected = torch.stack([train(Image.fromarray(im.permute(1, 2, 0).numpy())) for im in images])
            offsets = torch.tensor([[top, left]] * len(images))
            flips = torch.full((len(images),), flip)
            got = normalize(crop_and_flip(images, offsets, flips), CIFAR_MEAN, CIFAR_STD)
            assert torch.equal(got, expected), (top, left, flip)


def test_mixed_offsets_in_one_batch_are_applied_image_by_image():
    images = _images(4, seed=1)
    offsets = torch.tensor([[0, 8], [8, 0], [4, 4], [3, 6]])
    flips = torch.tensor([True, False, True, False])
    batch = crop_and_flip(images, offsets, flips)
    for i in range(4):
        alone = crop_and_flip(images[i:i + 1], offsets[i:i + 1], flips[i:i + 1])
        assert torch.equal(batch[i:i + 1], alone)
    assert torch.equal(batch[2], images[2].flip(-1))  # centre offset: the image itself, mirrored


def _coordinate_image() -> torch.Tensor:
    """Channel 0 holds row + 1, channel 1 column + 1 (0 only in the padding)."""
    rows = torch.arange(1, 33, dtype=torch.uint8)
    return torch.stack([rows[:, None].expand(32, 32), rows[None, :].expand(32, 32), torch.zeros(32, 32, dtype=torch.uint8)])


def test_offsets_are_uniform_over_the_81_positions_and_flips_fair_and_independent():
    """Recover each augmented image's (top, left, flip) from its pixels: output row 16 comes from
    image row top + 12 (value top + 13); the columns increase left to right unless flipped.
    A χ² test of the 9 × 9 × 2 counts against the uniform law (161 degrees of freedom, critical
    value 216 at p = 0.002), with a fixed seed."""
    n = 162 * 60
    data = ImageTensors(_coordinate_image().expand(n, 3, 32, 32), torch.zeros(n, dtype=torch.int64),
                        (0.0, 0.0, 0.0), (1.0 / 255, 1.0 / 255, 1.0 / 255), augment=True)
    x, _ = data.batch(torch.arange(n), torch.Generator().manual_seed(0))
    pixels = x.round().to(torch.int64)
    top = pixels[:, 0, 16, 16] - 13
    flipped = pixels[:, 1, 16, 16] < pixels[:, 1, 16, 15]
    left = torch.where(flipped, pixels[:, 1, 16, 16] - 12, pixels[:, 1, 16, 16] - 13)
    assert top.min() == 0 and top.max() == 8 and left.min() == 0 and left.max() == 8
    # the recovered parameters reproduce every image exactly
    rebuilt = crop_and_flip(_coordinate_image().expand(n, 3, 32, 32), torch.stack([top, left], 1), flipped)
    assert torch.equal(rebuilt.to(torch.int64), pixels)
    counts = torch.bincount((top * 9 + left) * 2 + flipped.long(), minlength=162).double()
    expected = n / 162
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 216, chi2
    assert abs(float(flipped.double().mean()) - 0.5) < 4 * (0.25 / n) ** 0.5


def test_without_augment_a_batch_is_the_normalised_images_in_index_order():
    images = _images(10, seed=2)
    labels = torch.arange(10) * 3
    data = ImageTensors(images, labels, CIFAR_MEAN, CIFAR_STD, augment=False)
    index = torch.tensor([7, 2, 2, 9])
    x, y = data.batch(index, None)
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])
    assert torch.equal(x, torch.stack([to_tensor(images[i].permute(1, 2, 0).numpy()) for i in index]))
    assert torch.equal(y, labels[index])


def test_device_batches_follow_the_index_batches_and_repeat_for_a_seed():
    data = ImageTensors(_images(12, seed=3), torch.arange(12), CIFAR_MEAN, CIFAR_STD, augment=True)
    order = [torch.tensor([5, 1, 3]), torch.tensor([0, 11]), torch.tensor([7])]
    batches = DeviceBatches(data, order, seed=4)
    assert len(batches) == 3
    first, again = list(batches), list(batches)
    assert [y.tolist() for _, y in first] == [[5, 1, 3], [0, 11], [7]]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))
    other = list(DeviceBatches(data, order, seed=5))
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other))
    assert list(DeviceBatches(data, [], seed=4)) == []


def test_skipping_batches_gives_the_rest_of_the_uninterrupted_epoch():
    """Mid-epoch resume: the batches after the first k, augmentation draws included, bit for bit."""
    data = ImageTensors(_images(12, seed=3), torch.arange(12), CIFAR_MEAN, CIFAR_STD, augment=True)
    order = [torch.tensor([5, 1, 7]), torch.tensor([0, 2, 9]), torch.tensor([3, 11, 4]), torch.tensor([8, 6, 10])]
    whole = list(DeviceBatches(data, order, seed=4))
    rest = DeviceBatches(data, order, seed=4, skip=2)
    assert len(rest) == 2
    for (x, y), (x_whole, y_whole) in zip(rest, whole[2:], strict=True):
        assert torch.equal(x, x_whole) and torch.equal(y, y_whole)


def test_images_view_of_the_numpy_array_becomes_contiguous_on_the_device():
    array = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    view = torch.from_numpy(array).permute(0, 3, 1, 2)
    data = ImageTensors(view, torch.arange(5), CIFAR_MEAN, CIFAR_STD, augment=False).to(torch.device("cpu"))
    assert data.images.is_contiguous() and torch.equal(data.images, view)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_pipeline_gives_the_cpu_pixels_and_stays_on_the_device():
    images = _images(64, seed=6)
    offsets = torch.randint(0, 2 * PADDING + 1, (64, 2), generator=torch.Generator().manual_seed(0))
    flips = torch.rand(64, generator=torch.Generator().manual_seed(1)) < 0.5
    cpu = normalize(crop_and_flip(images, offsets, flips), CIFAR_MEAN, CIFAR_STD)
    cuda = torch.device("cuda")
    gpu = normalize(crop_and_flip(images.to(cuda), offsets.to(cuda), flips.to(cuda)), CIFAR_MEAN, CIFAR_STD)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-6)
    data = ImageTensors(images, torch.arange(64), CIFAR_MEAN, CIFAR_STD, augment=True).to(cuda)
    batches = DeviceBatches(data, [torch.arange(0, 32), torch.arange(32, 64)], seed=3)
    first, again = list(batches), list(batches)
    assert all(x.device.type == "cuda" and y.device.type == "cuda" for x, y in first)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))
