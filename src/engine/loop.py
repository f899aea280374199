"""One training epoch and one evaluation pass. Knows nothing of binarization beyond the
hooks of src.quant.hooks (progress, auxiliary loss) and the update rule's before/after step."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from tqdm import tqdm

from src.engine.distributed import DistContext, all_reduce_sum
from src.core.errors import Diverged
from src.quant.hooks import auxiliary_loss, set_progress


@dataclass
class StepSettings:
    device: torch.device
    bf16: bool = False
    channels_last: bool = False
    grad_clip: float | None = None
    progress_bar: bool = True
    max_steps: int | None = None


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Shuffling (and worker seeds) depend only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def train_loader(dataset: Dataset, batch_size: int, num_workers: int, ctx: DistContext, seed: int, epoch: int,
                 pin_memory: bool = False) -> DataLoader:
    generator = epoch_generator(seed, epoch)
    if ctx.enabled:
        sampler: Any = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, generator=generator, drop_last=False)


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int, ctx: DistContext) -> DataLoader:
    """Each rank evaluates a disjoint shard (no padding, so every sample counts exactly once)."""
    if ctx.enabled:
        dataset = Subset(dataset, list(range(ctx.rank, len(dataset), ctx.world_size)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def _to_device(x: torch.Tensor, y: torch.Tensor, s: StepSettings) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(s.device, non_blocking=True)
    if s.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(s.device, non_blocking=True)


def _autocast(s: StepSettings):
    if not s.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=s.device.type, dtype=torch.bfloat16)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, update_rule: Any,
                s: StepSettings, ctx: DistContext, global_step: int, total_steps: int, desc: str,
                distiller: Any = None) -> dict[str, float]:
    """Returns loss, accuracy, steps, images and seconds of the epoch; raises Diverged on NaN/inf.
    ``distiller(x, logits, ce_loss) -> objective`` replaces the plain cross-entropy objective
    (src.engine.distill); the reported train_loss stays the cross-entropy."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    loss_sum = correct = seen = steps = 0.0
    n_batches = len(loader) if s.max_steps is None else min(len(loader), s.max_steps)
    # On a terminal the bar redraws often; in a log file (SLURM, CI) a line every 30 s is enough.
    interactive = sys.stderr.isatty()
    bar = tqdm(loader, total=n_batches, desc=desc, disable=not (s.progress_bar and ctx.is_main),
               leave=False, dynamic_ncols=True, mininterval=0.5 if interactive else 30.0)
    start = time.perf_counter()
    for x, y in bar:
        if steps >= n_batches:
            break
        progress = min(global_step / max(total_steps, 1), 1.0)
        set_progress(model, progress)
        if update_rule is not None:
            update_rule.set_progress(progress)
        x, y = _to_device(x, y, s)
        with _autocast(s):
            logits = model(x)
            loss = criterion(logits.float(), y)
            objective = loss if distiller is None else distiller(x, logits, loss)
        extra = auxiliary_loss(model)
        objective = objective if extra is None else objective + extra
        finite = bool(torch.isfinite(objective))
        if ctx.enabled:
            finite = all_reduce_sum([float(not finite)], ctx, s.device)[0] == 0
        if not finite:
            raise Diverged(global_step, float(objective))
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if s.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        if update_rule is not None:
            update_rule.before_step()
        optimizer.step()
        if update_rule is not None:
            update_rule.after_step(optimizer.param_groups[0]["lr"])
        batch = y.shape[0]
        loss_sum += float(loss.detach()) * batch
        correct += float((logits.argmax(1) == y).sum())
        seen += batch
        steps += 1
        global_step += 1
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}")
    bar.close()
    seconds = time.perf_counter() - start
    loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], ctx, s.device)
    return {"train_loss": loss_sum / max(seen, 1), "train_acc": 100.0 * correct / max(seen, 1),
            "steps": int(steps), "images": int(seen), "seconds": seconds}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, s: StepSettings, ctx: DistContext) -> dict[str, float]:
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = correct = seen = 0.0
    for x, y in loader:
        x, y = _to_device(x, y, s)
        with _autocast(s):
            logits = model(x)
        loss_sum += float(criterion(logits.float(), y))
        correct += float((logits.argmax(1) == y).sum())
        seen += y.shape[0]
    loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], ctx, s.device)
    loss = loss_sum / max(seen, 1)
    return {"loss": loss if math.isfinite(loss) else float("nan"), "acc": 100.0 * correct / max(seen, 1)}
