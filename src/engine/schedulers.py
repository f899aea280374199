"""timm's epoch-based learning-rate schedulers behind the interface the runner steps: ``step()``
once per finished epoch, ``state_dict()`` / ``load_state_dict()`` for resumption (as torch's).

timm's schedulers take the epoch as an argument, ``scheduler.step(epoch)``, which sets the
learning rate to f(epoch). DeiT's main.py (facebookresearch/deit, the training loop) calls
``lr_scheduler.step(epoch)`` after epoch ``epoch`` (0-based), so epoch e trains at f(max(e − 1, 0)):
f(0) is set when the scheduler is built and holds for epochs 0 and 1. :class:`EpochScheduler`
steps the same way.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


class EpochScheduler:
    """``EpochScheduler(optimizer, scheduler)`` with ``scheduler(optimizer)`` building a timm
    scheduler (``timm.scheduler.CosineLRScheduler`` and friends, ``t_in_epochs=True``); after the
    n-th finished epoch (n = 1, 2, ...) ``step()`` calls ``scheduler.step(n − 1)``, as DeiT does."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Callable[[torch.optim.Optimizer], Any]):
        self.scheduler = scheduler(optimizer)
        self.epochs_done = 0

    def step(self) -> None:
        self.scheduler.step(self.epochs_done)
        self.epochs_done += 1

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_done = int(state["epochs_done"])
        self.scheduler.load_state_dict(state["scheduler"])


def exponential_decay(optimizer: torch.optim.Optimizer, lr_ratio: float, epochs: int) -> torch.optim.lr_scheduler.ExponentialLR:
    """BinaryConnect's decay (Courbariaux et al. 2015, code cifar10.py): after every epoch
    lr ← lr·γ with γ = lr_ratio^(1/epochs), so over ``epochs`` the learning rate falls by ``lr_ratio``
    (BinaryConnect: lr_end/lr_start = 2e-6/3e-3). torch's ExponentialLR, stepped once per epoch."""
    if not 0 < lr_ratio <= 1 or epochs < 1:
        raise ValueError(f"exponential_decay needs 0 < lr_ratio <= 1 and epochs >= 1, got lr_ratio={lr_ratio}, "
                         f"epochs={epochs}")
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_ratio ** (1.0 / epochs))
