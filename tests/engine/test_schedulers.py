"""scheduler=cosine_warmup: DeiT's schedule (timm's CosineLRScheduler, warmup 5 epochs from 1e-6, cosine
to 1e-5) stepped once per epoch as DeiT's main.py steps it, and resumable from its state_dict."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose_train

BASE_LR, EPOCHS = 5e-4, 20


def deit_lr(t: int) -> float:
    """timm's cosine-with-warmup at epoch index t, written out: linear from 1e-6 over 5 epochs,
    then 1e-5 + (lr − 1e-5)(1 + cos(π t / T)) / 2 (warmup not prefixed: t counts from 0)."""
    if t < 5:
        return 1e-6 + t * (BASE_LR - 1e-6) / 5
    return 1e-5 + 0.5 * (BASE_LR - 1e-5) * (1 + math.cos(math.pi * t / EPOCHS))


def _scheduler():
    cfg = compose_train(["scheduler=cosine_warmup", "optimizer=adamw", f"trainer.max_epochs={EPOCHS}"])
    optimizer = instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(2))])
    return optimizer, instantiate(cfg.scheduler)(optimizer)


def test_epoch_e_trains_at_the_value_deit_steps_to_after_epoch_e_minus_1():
    optimizer, scheduler = _scheduler()
    used = []
    for _ in range(EPOCHS):
        used.append(optimizer.param_groups[0]["lr"])  # the lr the epoch trains at
        scheduler.step()                               # after the epoch, as the runner does
    assert used == pytest.approx([deit_lr(max(e - 1, 0)) for e in range(EPOCHS)], rel=1e-12)
    assert used[0] == used[1] == pytest.approx(1e-6) and max(used) == pytest.approx(deit_lr(5))


def test_state_dict_resumes_the_schedule_exactly():
    optimizer, scheduler = _scheduler()
    for _ in range(7):
        scheduler.step()
    state, lr = scheduler.state_dict(), optimizer.param_groups[0]["lr"]
    rest = []
    for _ in range(5):
        scheduler.step()
        rest.append(optimizer.param_groups[0]["lr"])

    optimizer2, resumed = _scheduler()
    optimizer2.param_groups[0]["lr"] = lr  # the optimizer's own state_dict restores its lr
    resumed.load_state_dict(state)
    again = []
    for _ in range(5):
        resumed.step()
        again.append(optimizer2.param_groups[0]["lr"])
    assert again == rest and resumed.epochs_done == 12
