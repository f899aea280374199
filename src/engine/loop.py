"""One training epoch and one evaluation pass. Knows nothing of binarization beyond the
hooks of src.quant.hooks (progress, auxiliary loss) and the update rule's before/after step."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from hydra.utils import instantiate
from timm.loss import SoftTargetCrossEntropy
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset
from tqdm import tqdm

from src.core.errors import Diverged, UserError
from src.engine.distributed import DistContext, all_reduce_sum
from src.engine.loggers import NullLogger
from src.quant.hooks import auxiliary_loss, set_progress
from src.quant.updates import NullUpdate

log = logging.getLogger("proxbin")

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class StepSettings:
    """The ``trainer`` keys the loop reads, under their config names (configs/trainer/default.yaml);
    ``device`` is ``trainer.device`` resolved to a torch.device (src.engine.environment)."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    grad_clip: float | None = None
    progress: bool = True
    log_every_n_steps: int = 50
    max_steps_per_epoch: int | None = None
    mixup: Any = None  # null, or timm.data.Mixup's config (mixup=deit, configs/mixup/)

    def __post_init__(self) -> None:
        _check("precision", self.precision, self.precision in PRECISIONS, " or ".join(PRECISIONS))
        for key in ("channels_last", "progress"):
            _check(key, getattr(self, key), isinstance(getattr(self, key), bool), "true or false")
        _check("grad_clip", self.grad_clip, self.grad_clip is None or _positive(self.grad_clip),
               "a positive max gradient norm, or null (no clipping)")
        _check("log_every_n_steps", self.log_every_n_steps, _positive(self.log_every_n_steps, (int,)),
               "a positive integer")
        _check("max_steps_per_epoch", self.max_steps_per_epoch,
               self.max_steps_per_epoch is None or _positive(self.max_steps_per_epoch, (int,)),
               "a positive integer, or null (the whole epoch)")
        _check("mixup", self.mixup, self.mixup is None or (isinstance(self.mixup, Mapping) and "_target_" in self.mixup),
               "null, or a Mixup config with a _target_ (mixup=deit, configs/mixup/)")

    @property
    def drop_last(self) -> bool:
        """timm's Mixup needs an even batch: with mixup, an epoch's incomplete last batch is
        dropped (as DeiT's training loader does); without, every image is seen."""
        return self.mixup is not None

    @classmethod
    def from_trainer(cls, trainer: Mapping[str, Any], device: torch.device) -> StepSettings:
        """The settings from the ``trainer`` config group, key for key."""
        return cls(device=device, **{f.name: trainer[f.name] for f in fields(cls) if f.name != "device"})

    def steps_per_epoch(self, batches: int) -> int:
        return batches if self.max_steps_per_epoch is None else min(batches, self.max_steps_per_epoch)


def _positive(value: Any, types: tuple[type, ...] = (int, float)) -> bool:
    return isinstance(value, types) and not isinstance(value, bool) and value > 0


def _check(key: str, value: Any, ok: bool, valid: str) -> None:
    if not ok:
        raise UserError(f"trainer.{key}={value!r} is not valid: it must be {valid}")


def plain_objective(x: torch.Tensor, logits: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """The objective without distillation: the cross-entropy itself."""
    return loss


@dataclass
class TrainStep:
    """One optimizer step of PC++ eq. 7, w*_{t+1} = w*_t − η_t B(w*_t) ∇ℓ(F(w*_t)): the forward runs
    the quantized layers' F, backward their B, the optimizer steps, and the method's update rule
    (src.quant.updates) acts around that step. ``objective(x, logits, ce_loss)`` is what is
    minimised (the distillation objective of src.models.distill under KD); the schedules see the
    progress p = t / ``total_steps``. With ``settings.mixup`` (timm's Mixup, DeiT's recipe) the batch
    is mixed first and ``ce_loss`` is timm's SoftTargetCrossEntropy −mean_i Σ_c t_ic log softmax(z_i)_c
    against the mixed, label-smoothed targets t; without it, the cross-entropy with the labels."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    settings: StepSettings
    total_steps: int
    update_rule: NullUpdate = field(default_factory=NullUpdate)
    objective: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = plain_objective
    ctx: DistContext = DistContext()

    def __post_init__(self) -> None:
        self.mix = None if self.settings.mixup is None else instantiate(self.settings.mixup)
        self.criterion = F.cross_entropy if self.mix is None else SoftTargetCrossEntropy()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step t on the batch (x, y), already on the device; returns the cross-entropy and the logits."""
        progress = min(t / max(self.total_steps, 1), 1.0)
        set_progress(self.model, progress)
        self.update_rule.set_progress(progress)
        target = y
        if self.mix is not None:
            if x.shape[0] % 2:
                raise UserError(f"trainer.mixup needs an even batch per rank, got {x.shape[0]} images: set "
                                f"dataset.batch_size to an even number per rank (or train without mixup=)")
            x, target = self.mix(x, y)  # mixes x in place; target: (batch, classes) soft labels
        with _autocast(self.settings):
            logits = self.model(x)
            loss = self.criterion(logits.float(), target)
            objective = self.objective(x, logits, loss)
        extra = auxiliary_loss(self.model)
        objective = objective if extra is None else objective + extra
        self._stop_if_diverged(objective, t)
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.update_rule.before_step()
        self.optimizer.step()
        self.update_rule.after_step(self.lr)
        return loss, logits

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _stop_if_diverged(self, objective: torch.Tensor, t: int) -> None:
        finite = bool(torch.isfinite(objective))
        if self.ctx.enabled:  # every rank stops together, or the others would hang in all-reduce
            finite = all_reduce_sum([float(not finite)], self.ctx, self.settings.device)[0] == 0
        if not finite:
            raise Diverged(t, float(objective))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Shuffling (and worker seeds) depend only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def train_loader(dataset: Dataset, batch_size: int, num_workers: int, ctx: DistContext, seed: int, epoch: int,
                 pin_memory: bool = False, drop_last: bool = False, prefetch_factor: int | None = None) -> DataLoader:
    """A new loader each epoch: the order and the workers' seeds come from (seed, epoch) alone.
    ``prefetch_factor``: batches each worker loads ahead (torch's default without workers or None)."""
    generator = epoch_generator(seed, epoch)
    if ctx.enabled:
        sampler: Any = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, generator=generator, drop_last=drop_last,
                      prefetch_factor=prefetch_factor if num_workers else None)


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int, ctx: DistContext, pin_memory: bool = False,
                prefetch_factor: int | None = None, persistent_workers: bool = False) -> DataLoader:
    """Each rank evaluates a disjoint shard (no padding, so every sample counts exactly once).
    Evaluation draws nothing at random, so one loader can serve a whole run with persistent workers."""
    if ctx.enabled:
        dataset = Subset(dataset, list(range(ctx.rank, len(dataset), ctx.world_size)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory,
                      prefetch_factor=prefetch_factor if num_workers else None,
                      persistent_workers=persistent_workers and num_workers > 0)


def _to_device(x: torch.Tensor, y: torch.Tensor, s: StepSettings) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(s.device, non_blocking=True)
    if s.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(s.device, non_blocking=True)


def _autocast(s: StepSettings):
    if s.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=s.device.type, dtype=torch.bfloat16)


def train_epoch(step: TrainStep, loader: DataLoader, global_step: int, desc: str,
                logger: NullLogger = NullLogger()) -> dict[str, float]:
    """Returns loss, accuracy, steps, images and seconds of the epoch; raises Diverged on NaN/inf.
    Every ``log_every_n_steps`` optimizer steps the running loss/accuracy of the epoch so far
    (this rank's), the lr and the step go to ``logger``; the reported train_loss is the cross-entropy
    (against the mixed targets under mixup, while train_acc compares with the unmixed labels)."""
    s = step.settings
    step.model.train()
    loss_sum = correct = seen = steps = 0.0
    n_steps = s.steps_per_epoch(len(loader))
    # On a terminal a tqdm bar; in a log file (SLURM, CI) a plain line every log_every_n_steps steps.
    show = s.progress and step.ctx.is_main
    interactive = sys.stderr.isatty()
    bar = tqdm(loader, total=n_steps, desc=desc, disable=not (show and interactive), leave=False,
               dynamic_ncols=True, mininterval=0.5)
    start = time.perf_counter()
    for x, y in bar:
        if steps >= n_steps:
            break
        x, y = _to_device(x, y, s)
        loss, logits = step(x, y, global_step)
        batch = y.shape[0]
        loss_sum += float(loss.detach()) * batch
        correct += float((logits.argmax(1) == y).sum())
        seen += batch
        steps += 1
        global_step += 1
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}")
        if global_step % s.log_every_n_steps == 0:
            logger.log({"running_train_loss": loss_sum / seen, "running_train_acc": 100.0 * correct / seen,
                        "lr": step.lr, "step": global_step}, step=global_step)
            if show and not interactive:
                # every rank sees as many images as this one
                img_per_s = seen * step.ctx.world_size / max(time.perf_counter() - start, 1e-9)
                log.info("%s  step %d/%d  %.0f img/s  loss %.4f", desc, global_step, step.total_steps,
                         img_per_s, loss_sum / seen)
    bar.close()
    seconds = time.perf_counter() - start
    loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], step.ctx, s.device)
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
