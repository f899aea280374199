"""Where the loop's batches come from (``dataset.loader``).

``device``: the splits live on the training device as uint8 tensors and each batch is cropped,
flipped and normalised there (src.data.on_device); ``dataloader``: torch DataLoaders decode and
augment in worker processes (PIL transforms; ImageNet, resized or timm-augmented CIFAR); ``auto``:
device where the dataset comes as tensors (CIFAR at 32 px with the standard recipe) and the device
is a GPU, dataloader otherwise. Both paths draw the same indices in the same order for a given
(seed, epoch), with the same shard per rank: the device path takes its order from the DataLoader
path's own sampler (a DataLoader over the indices).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import torch

from src.core.errors import UserError
from src.data.on_device import DeviceBatches
from src.data.splits import Splits
from src.engine.distributed import DistContext
from src.engine.loop import eval_loader, train_loader

LOADERS = ("auto", "device", "dataloader")


def resolve_loader(loader: str, splits: Splits, device: torch.device) -> str:
    """``dataset.loader`` as the path this run takes: ``device`` or ``dataloader``."""
    if loader not in LOADERS:
        raise UserError(f"dataset.loader={loader!r} is not one of {', '.join(LOADERS)}")
    if loader == "auto":
        return "device" if splits.train_tensors is not None and device.type == "cuda" else "dataloader"
    if loader == "device" and splits.train_tensors is None:
        raise UserError(
            "dataset.loader=device needs a dataset the on-device pipeline can prepare exactly as its transforms "
            "do: CIFAR-10/100 at 32x32 with the standard augmentation (dataset.splits.augment=true or false, no "
            f"augment= recipe); this run's dataset (image size {splits.image_size}) has no such tensors. "
            "Use dataset.loader=dataloader, or auto (the device path wherever it applies)")
    return loader


def augment_seed(seed: int, epoch: int, rank: int) -> int:
    """The on-device augmentation seed of one rank's epoch: a function of (seed, epoch, rank) alone
    (a resumed run draws the same crops and flips), different across ranks."""
    digest = hashlib.sha256(f"augment:{seed}:{epoch}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class DataPath:
    """The training batches of an epoch and the evaluation batches of one run, from the path
    ``loader`` resolves to. ``batch_size`` is per rank; ``prefetch_factor`` and ``num_workers`` are
    the DataLoader path's (pinned memory on CUDA; the evaluation loader keeps its workers)."""

    def __init__(self, splits: Splits, loader: str, batch_size: int, eval_batch_size: int, num_workers: int,
                 prefetch_factor: int | None, ctx: DistContext, seed: int, device: torch.device,
                 drop_last: bool = False):
        self.kind = resolve_loader(loader, splits, device)
        self.splits, self.batch_size, self.eval_batch_size = splits, batch_size, eval_batch_size
        self.num_workers, self.prefetch_factor = num_workers, prefetch_factor
        self.ctx, self.seed, self.device, self.drop_last = ctx, seed, device, drop_last
        self._eval_loader: Iterable | None = None
        if self.kind == "device":  # one copy to the device for the whole run
            self.train_tensors = splits.train_tensors.to(device)
            self.test_tensors = splits.test_tensors.to(device)

    def train(self, epoch: int, skip_batches: int = 0) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches of ``epoch`` (an iterable with len(), a new one each epoch), from batch
        ``skip_batches`` on (a run resumed mid-epoch: the same batches as the uninterrupted epoch's rest)."""
        if self.kind == "device":
            indices = train_loader(range(len(self.train_tensors)), self.batch_size, 0, self.ctx, self.seed, epoch,
                                   drop_last=self.drop_last)
            return DeviceBatches(self.train_tensors, indices, augment_seed(self.seed, epoch, self.ctx.rank),
                                 skip=skip_batches)
        return train_loader(self.splits.train, self.batch_size, self.num_workers, self.ctx, self.seed, epoch,
                            pin_memory=self.device.type == "cuda", drop_last=self.drop_last,
                            prefetch_factor=self.prefetch_factor, skip_batches=skip_batches)

    def test(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's shard of the test split, in order (every image exactly once over the ranks)."""
        if self.kind == "device":
            shard = torch.arange(self.ctx.rank, len(self.test_tensors), self.ctx.world_size)
            return DeviceBatches(self.test_tensors, list(shard.split(self.eval_batch_size)), seed=0)
        if self._eval_loader is None:
            self._eval_loader = eval_loader(self.splits.test, self.eval_batch_size, self.num_workers, self.ctx,
                                            pin_memory=self.device.type == "cuda",
                                            prefetch_factor=self.prefetch_factor, persistent_workers=True)
        return self._eval_loader
