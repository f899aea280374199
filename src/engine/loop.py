"""One training epoch and one evaluation pass. Knows nothing of binarization beyond the
hooks of src.quant.hooks (progress, auxiliary loss) and the update rule's before/after step.

No host sync per step: the loss and correct-count sums of the epoch and the first non-finite
step live on the device; they are read every ``log_every_n_steps`` and ``checkpoint_every_n_steps``
optimizer steps and at the epoch's end (a *read point*). A non-finite objective is caught at the
first read point after it (within N steps) and raised as Diverged with its exact step; since every
checkpoint is written right after a read point, no weight update from that step on reaches a
checkpoint. The plain progress line of a log file (:class:`ProgressLine`) is due by the clock, not
at read points: when due, rank 0 alone reads its loss sum (one sync every ``log_every_n_seconds``)."""

from __future__ import annotations

import contextlib
import itertools
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
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler, Subset
from tqdm import tqdm

from src.core.errors import Diverged, UserError
from src.engine.distributed import DistContext, all_reduce_sum
from src.engine.loggers import NullLogger
from src.quant.hooks import auxiliary_loss, set_progress
from src.quant.updates import NullUpdate

log = logging.getLogger("proxbin")

PRECISIONS = ("fp32", "bf16", "fp16")
# train_epoch reports the host seconds of its first steps: where torch.compile traces (src.engine.compile)
TIMED_STEPS = 2


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
    log_every_n_seconds: float = 30.0
    max_steps_per_epoch: int | None = None
    mixup: Any = None  # null, or timm.data.Mixup's config (mixup=deit, configs/mixup/)
    accumulate_grad_batches: int = 1
    checkpoint_every_n_steps: int | None = None

    def __post_init__(self) -> None:
        _check("precision", self.precision, self.precision in PRECISIONS, " or ".join(PRECISIONS))
        for key in ("channels_last", "progress"):
            _check(key, getattr(self, key), isinstance(getattr(self, key), bool), "true or false")
        _check("grad_clip", self.grad_clip, self.grad_clip is None or _positive(self.grad_clip),
               "a positive max gradient norm, or null (no clipping)")
        _check("log_every_n_steps", self.log_every_n_steps, _positive(self.log_every_n_steps, (int,)),
               "a positive integer")
        _check("log_every_n_seconds", self.log_every_n_seconds, _positive(self.log_every_n_seconds),
               "a positive number of seconds")
        _check("max_steps_per_epoch", self.max_steps_per_epoch,
               self.max_steps_per_epoch is None or _positive(self.max_steps_per_epoch, (int,)),
               "a positive integer, or null (the whole epoch)")
        _check("accumulate_grad_batches", self.accumulate_grad_batches,
               _positive(self.accumulate_grad_batches, (int,)), "a positive integer (1: a step per batch)")
        _check("checkpoint_every_n_steps", self.checkpoint_every_n_steps,
               self.checkpoint_every_n_steps is None or _positive(self.checkpoint_every_n_steps, (int,)),
               "a positive integer, or null (checkpoints at epoch ends only)")
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
        """Optimizer steps of an epoch of ``batches`` loader batches: one per
        ``accumulate_grad_batches`` batches (an incomplete last group is a step too), capped."""
        steps = -(-batches // self.accumulate_grad_batches)
        return steps if self.max_steps_per_epoch is None else min(steps, self.max_steps_per_epoch)


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
    against the mixed, label-smoothed targets t; without it, the cross-entropy with the labels.

    A step is ``begin(t)``, one ``micro_step`` per batch of its group, ``finish()`` (``step(x, y, t)``:
    all three on one batch). With ``accumulate_grad_batches`` = k the group is k batches of n_1..n_k
    images and the step's gradient is that of the group's mean objective Σ_j n_j ℓ_j / Σ_j n_j, as for
    one batch of Σ_j n_j images (exactly so without BatchNorm, whose statistics stay per batch); the
    progress, the clip and the update rule act once per optimizer step.

    ``precision=fp16``: float16 autocast with torch.amp's GradScaler: the objective is multiplied by
    the scale S before backward and the gradients divided by S (``unscale_``) before the clip, so the
    clip acts on the true gradients. A step whose gradients hold inf/NaN is skipped by the scaler
    (and S lowered): then neither the optimizer nor the update rule's before/after-step hooks (rPC's
    move, the prox, the clip of u to [−1, 1]) run. The freeze (``freeze_at``) is a point of the
    schedule set before the forward, not an update: it maps unchanged weights to n·sign(u), the same
    whether it fires in a skipped step or the next."""

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
        fp16 = self.settings.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.settings.device.type) if fp16 else None
        # the first non-finite objective's step and value, kept on the device until a read point
        self.nonfinite_step = torch.full((), -1, dtype=torch.int64, device=self.settings.device)
        self.nonfinite_value = torch.zeros((), dtype=torch.float32, device=self.settings.device)
        self.t = 0
        self._sizes: list[int] = []  # images of each batch of the step in progress

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step t on the batch (x, y), already on the device; returns the cross-entropy and the logits."""
        self.begin(t)
        loss, logits = self.micro_step(x, y, batches=1)
        self.finish()
        return loss, logits

    def begin(self, t: int) -> None:
        """Start optimizer step t: the schedules' progress, cleared gradients."""
        self.t = t
        self._sizes = []
        progress = min(t / max(self.total_steps, 1), 1.0)
        set_progress(self.model, progress)
        self.update_rule.set_progress(progress)
        self.optimizer.zero_grad(set_to_none=True)

    def micro_step(self, x: torch.Tensor, y: torch.Tensor, batches: int,
                   last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one of the ``batches`` batches of the step; its objective is
        weighted n_j / (batches · n_1), so equal batches average (``finish`` corrects a smaller last
        one). ``last``: the step's last batch (before it, DDP does not all-reduce the gradients)."""
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
        self._record_nonfinite(objective)
        self._sizes.append(y.shape[0])
        weight = y.shape[0] / (batches * self._sizes[0])
        if weight != 1.0:
            objective = objective * weight
        if self.scaler is not None:
            objective = self.scaler.scale(objective)
        no_sync = not last and self.ctx.enabled and hasattr(self.model, "no_sync")
        with self.model.no_sync() if no_sync else contextlib.nullcontext():
            objective.backward()
        return loss, logits

    def finish(self) -> None:
        """The optimizer step on the gradients of the step's batches: unscale (fp16), average,
        clip, then the update rule's before_step, the optimizer's step and after_step."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        nominal, images = len(self._sizes) * self._sizes[0], sum(self._sizes)
        if images != nominal:  # Σ_j n_j ∇ℓ_j / (k n_1) → Σ_j n_j ∇ℓ_j / Σ_j n_j
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(nominal / images)
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        if self.scaler is None:
            self.update_rule.before_step()
            self.optimizer.step()
            self.update_rule.after_step(self.lr)
            return
        # the scaler calls optimizer.step() only when the gradients are finite: the hooks run with it
        before = self.optimizer.register_step_pre_hook(lambda *_: self.update_rule.before_step())
        after = self.optimizer.register_step_post_hook(lambda *_: self.update_rule.after_step(self.lr))
        try:
            self.scaler.step(self.optimizer)
        finally:
            before.remove()
            after.remove()
        self.scaler.update()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _record_nonfinite(self, objective: torch.Tensor) -> None:
        value = objective.detach().float()
        first = ~torch.isfinite(value) & (self.nonfinite_step < 0)
        self.nonfinite_step = torch.where(first, self.t, self.nonfinite_step)
        self.nonfinite_value = torch.where(first, value, self.nonfinite_value)

    def raise_if_diverged(self) -> None:
        """A read point: Diverged at the first step whose objective was NaN/inf (the earliest of
        any rank's: every rank stops together, or the others would hang in all-reduce)."""
        step, value = int(self.nonfinite_step), float(self.nonfinite_value)
        if self.ctx.enabled:  # each rank's (step + 1, value) in its own slot; 0: none
            slots = [0.0] * (2 * self.ctx.world_size)
            slots[2 * self.ctx.rank: 2 * self.ctx.rank + 2] = [step + 1.0, value]
            slots = all_reduce_sum(slots, self.ctx, self.settings.device)
            found = [(int(slots[2 * r]) - 1, slots[2 * r + 1]) for r in range(self.ctx.world_size) if slots[2 * r] > 0]
            step, value = min(found) if found else (-1, 0.0)
        if step >= 0:
            raise Diverged(step, value)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs of the step: the fp16 gradient scaler's scale and growth tracker."""
        return {} if self.scaler is None else {"grad_scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])


@dataclass(frozen=True)
class EpochProgress:
    """An epoch after ``steps`` of its optimizer steps: the sums behind its train loss and
    accuracy (cross-entropy × images, correct predictions, images), read at a read point; what a
    mid-epoch checkpoint keeps of the epoch in progress."""

    steps: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Shuffling (and worker seeds) depend only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def train_loader(dataset: Dataset, batch_size: int, num_workers: int, ctx: DistContext, seed: int, epoch: int,
                 pin_memory: bool = False, drop_last: bool = False, prefetch_factor: int | None = None,
                 skip_batches: int = 0) -> DataLoader:
    """The epoch's batches in the (seed, epoch)-determined order, a new loader each epoch (the order and the
    workers' seeds come from (seed, epoch) alone). ``prefetch_factor``: batches each worker loads ahead
    (torch's default without workers or None); ``skip_batches``: from that batch on (a run resumed
    mid-epoch), without loading the ones before."""
    generator = epoch_generator(seed, epoch)
    if ctx.enabled:
        sampler: Any = DistributedSampler(dataset, ctx.world_size, ctx.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    if skip_batches:
        sampler = _Skipping(sampler, skip_batches * batch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, generator=generator, drop_last=drop_last,
                      prefetch_factor=prefetch_factor if num_workers else None)


class _Skipping(Sampler):
    """The indices of ``sampler`` after its first ``skip``: the whole order is drawn as before."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


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
    return torch.autocast(device_type=s.device.type, dtype=torch.bfloat16 if s.precision == "bf16" else torch.float16)


class ProgressLine:
    """Where stderr is not a terminal (SLURM, CI log files) a tqdm bar would only leave stale
    redraws: instead one plain line every ``every_s`` seconds, at the first step that ends after
    them: step/total of the run, img/s (all ranks), the epoch's running loss, and the ETA of the
    run's remaining training steps at this epoch's step rate (evaluation not included).

    Due by the clock, not at the read points of ``log_every_n_steps``: those come every 50 steps
    by default, which is minutes per line for a large model and many lines a second for a small
    one, and a read point includes the divergence check, a collective under DDP that every rank must
    enter at the same step, which a clock cannot promise. Here rank 0 alone reads its loss sum
    from the device when a line is due: one sync every ``every_s`` seconds and no collective;
    between lines a step costs a clock reading."""

    clock = staticmethod(time.perf_counter)

    def __init__(self, desc: str, total_steps: int, every_s: float, world_size: int, enabled: bool):
        self.desc, self.total, self.every_s = desc, total_steps, every_s
        self.world_size, self.enabled = world_size, enabled
        self.start = self.last = self.clock()

    def after_step(self, global_step: int, steps: int, images: int, loss_sum: torch.Tensor, seen: int) -> None:
        """After optimizer step ``global_step``; ``steps`` and ``images`` of this epoch call so far."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        eta = int(max(self.total - global_step, 0) * elapsed / max(steps, 1))
        log.info("%s  step %d/%d  %.0f img/s  loss %.4f  ETA %d:%02d:%02d", self.desc, global_step, self.total,
                 images * self.world_size / elapsed, float(loss_sum) / max(seen, 1), eta // 3600, eta % 3600 // 60,
                 eta % 60)


def train_epoch(step: TrainStep, loader: Any, global_step: int, desc: str, logger: NullLogger = NullLogger(),
                start: EpochProgress = EpochProgress(),
                checkpoint: Callable[[EpochProgress, int], None] | None = None,
                stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Train the rest of an epoch (``start``: the steps it already took; ``loader``: its batches
    from there on). Returns the epoch's loss and accuracy, and the steps, images and seconds of this
    call (``first_steps_s``: host seconds of each of its first ``TIMED_STEPS`` steps); raises Diverged
    on NaN/inf at the next read point. Every ``log_every_n_steps`` optimizer
    steps the running loss/accuracy of the epoch so far (this rank's), the lr and the step go to
    ``logger``; in a log file a :class:`ProgressLine` every ``log_every_n_seconds``; every
    ``checkpoint_every_n_steps`` (not at the epoch's end) ``checkpoint(progress, global_step)`` is
    called. ``stop()`` is asked before each step: once true the epoch ends early (``stopped``),
    checkpointed there when ``checkpoint_every_n_steps`` is set. The reported
    train_loss is the cross-entropy (against the mixed targets under mixup, while train_acc compares
    with the unmixed labels)."""
    s = step.settings
    k = s.accumulate_grad_batches
    step.model.train()
    loss_sum = torch.tensor(start.loss_sum, dtype=torch.float64, device=s.device)
    correct = torch.tensor(start.correct, dtype=torch.int64, device=s.device)
    seen, images, done, saved = start.seen, 0, start.steps, start.steps
    n_steps = s.steps_per_epoch(len(loader) + start.steps * k)
    batches_left = min(len(loader), (n_steps - start.steps) * k)
    # On a terminal a tqdm bar; in a log file (SLURM, CI) a plain line every log_every_n_seconds.
    show = s.progress and step.ctx.is_main
    interactive = sys.stderr.isatty()
    bar = tqdm(total=n_steps, initial=start.steps, desc=desc, disable=not (show and interactive), leave=False,
               dynamic_ncols=True, mininterval=0.5)
    line = ProgressLine(desc, step.total_steps, s.log_every_n_seconds, step.ctx.world_size, show and not interactive)
    checkpointing = checkpoint is not None and s.checkpoint_every_n_steps is not None

    def read(reduce: bool = False) -> EpochProgress:
        """The one host sync: the divergence check and the device sums (all ranks' if ``reduce``)."""
        step.raise_if_diverged()
        sums = [float(loss_sum), float(correct), float(seen)]
        if reduce:
            sums = all_reduce_sum(sums, step.ctx, s.device)
        return EpochProgress(done, sums[0], int(sums[1]), int(sums[2]))

    def save() -> None:
        nonlocal saved
        checkpoint(read(reduce=True), global_step)
        saved = done

    batches = iter(loader)
    stopped = False
    first_steps_s: list[float] = []
    start_time = time.perf_counter()
    while done < n_steps:
        if stop():
            stopped = True
            break
        group = min(k, batches_left)
        batches_left -= group
        step_start = time.perf_counter()
        step.begin(global_step)
        for j in range(group):
            x, y = _to_device(*next(batches), s)
            loss, logits = step.micro_step(x, y, group, last=j == group - 1)
            loss_sum += loss.detach().double() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
            images += y.shape[0]
        step.finish()
        if len(first_steps_s) < TIMED_STEPS:
            first_steps_s.append(time.perf_counter() - step_start)
        done += 1
        global_step += 1
        bar.update(1)
        line.after_step(global_step, done - start.steps, images, loss_sum, seen)
        if global_step % s.log_every_n_steps == 0:
            now = read()
            loss_mean, acc = now.loss_sum / now.seen, 100.0 * now.correct / now.seen
            bar.set_postfix(loss=f"{loss_mean:.4f}", acc=f"{acc:.2f}")
            logger.log({"running_train_loss": loss_mean, "running_train_acc": acc, "lr": step.lr,
                        "step": global_step}, step=global_step)
        if checkpointing and global_step % s.checkpoint_every_n_steps == 0 and done < n_steps:
            save()
    bar.close()
    seconds = time.perf_counter() - start_time
    if stopped and checkpointing and done > saved:
        save()
    end = read(reduce=True)
    images = int(all_reduce_sum([float(images)], step.ctx, s.device)[0])
    return {"train_loss": end.loss_sum / max(end.seen, 1), "train_acc": 100.0 * end.correct / max(end.seen, 1),
            "steps": done - start.steps, "images": images, "seconds": seconds, "stopped": stopped,
            "first_steps_s": first_steps_s}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, s: StepSettings, ctx: DistContext) -> dict[str, float]:
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = torch.zeros((), dtype=torch.float64, device=s.device)  # on the device: no sync per batch
    correct = torch.zeros((), dtype=torch.int64, device=s.device)
    seen = 0
    for x, y in loader:
        x, y = _to_device(x, y, s)
        with _autocast(s):
            logits = model(x)
        loss_sum += criterion(logits.float(), y).double()
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
    loss_sum, correct, seen = all_reduce_sum([float(loss_sum), float(correct), float(seen)], ctx, s.device)
    loss = loss_sum / max(seen, 1)
    return {"loss": loss if math.isfinite(loss) else float("nan"), "acc": 100.0 * correct / max(seen, 1)}
