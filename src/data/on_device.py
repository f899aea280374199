"""Images held as one uint8 tensor on the training device, augmented and normalised a batch at a time.

The torchvision CIFAR recipe (:func:`src.data.cifar.cifar_transforms`) treats one image at a time:
RandomCrop(32, padding=4) pads with zeros and cuts the window at a top-left offset (i, j) drawn
uniformly from {0, …, 8}², RandomHorizontalFlip mirrors it with p = ½, ToTensor divides by 255 and
Normalize maps x ↦ (x − mean) / std per channel. :func:`crop_and_flip` and :func:`normalize` do the
same for a whole batch with one gather and one float conversion: for a given offset and flip the
pixels are those of torchvision, bit for bit (tests/data/test_on_device.py compares).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

PADDING = 4  # RandomCrop(32, padding=4): the offsets of a 32-pixel window in the padded 40 pixels are 0..8


def crop_and_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
                  padding: int = PADDING) -> torch.Tensor:
    """``images`` (B, C, H, W) zero-padded by ``padding``, each cut at its (top, left) ``offsets``
    (B, 2) to H × W and mirrored left-right where ``flips`` (B,) is true: output pixel (r, c) of
    image b is padded[b, top_b + r, left_b + (W − 1 − c if flipped else c)]."""
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # zeros: RandomCrop's fill=0
    rows = offsets[:, :1] + torch.arange(height, device=images.device)
    columns = torch.arange(width, device=images.device)
    columns = torch.where(flips[:, None], width - 1 - columns, columns) + offsets[:, 1:]
    return padded[torch.arange(batch, device=images.device)[:, None, None, None],
                  torch.arange(channels, device=images.device)[None, :, None, None],
                  rows[:, None, :, None], columns[:, None, None, :]]


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 → float32 (x / 255 − mean) / std per channel, the operations of ToTensor then Normalize."""
    mean_t, std_t = _channel_constants(tuple(map(float, mean)), tuple(map(float, std)), images.device)
    return images.to(torch.float32).div(255).sub(mean_t).div(std_t)


@functools.lru_cache(maxsize=None)
def _channel_constants(mean: tuple[float, ...], std: tuple[float, ...],
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as (C, 1, 1) float32 tensors on ``device``, made once: a copy from the host at
    every batch would make the host wait for the GPU at every step."""
    return (torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1),
            torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1))


@dataclass(frozen=True)
class ImageTensors:
    """A whole split as tensors: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64, the
    normalisation, and whether a batch gets the random crop (``PADDING``) and flip."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> ImageTensors:
        """A contiguous copy on ``device`` (one transfer for the whole run)."""
        return replace(self, images=self.images.to(device).contiguous(), labels=self.labels.to(device))

    def batch(self, index: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``index`` (on the tensors' device) as a normalised float batch, with its labels;
        with ``augment``, each image's offset and flip are drawn from ``generator``."""
        images = self.images[index]
        if self.augment:
            images = crop_and_flip(images, *self.draws(len(index), generator))
        return normalize(images, self.mean, self.std), self.labels[index]

    def draws(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The crop offsets (uniform over the 9×9 positions) and flips (p = ½) of ``n`` images."""
        device = self.images.device
        offsets = torch.randint(0, 2 * PADDING + 1, (n, 2), generator=generator, device=device)
        return offsets, torch.rand(n, generator=generator, device=device) < 0.5


class DeviceBatches:
    """The (images, labels) batches of ``data`` whose indices ``index_batches`` gives (an iterable
    with len(), e.g. a DataLoader over range(N) with the engine's sampler, so the order and the
    rank's shard are the DataLoader path's). The epoch's indices move to the device in one copy at
    the start; no step waits for the host. Augmentation draws come from a generator on the data's
    device seeded with ``seed``, so an epoch is a function of (indices, seed)."""

    def __init__(self, data: ImageTensors, index_batches: Iterable[torch.Tensor], seed: int, skip: int = 0):
        self.data = data
        self.index_batches = index_batches
        self.seed = seed
        self.skip = skip  # batches already trained (mid-epoch resume): their draws are consumed, not yielded

    def __len__(self) -> int:
        return max(len(self.index_batches) - self.skip, 0)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        chunks = [torch.as_tensor(b, dtype=torch.int64) for b in self.index_batches]
        if not chunks:
            return
        device = self.data.images.device
        order = torch.cat(chunks).to(device)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        for i, index in enumerate(order.split([len(c) for c in chunks])):
            if i < self.skip:
                if self.data.augment:
                    self.data.draws(len(index), generator)
                continue
            yield self.data.batch(index, generator)
