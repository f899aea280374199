"""Update rules: the third axis of a method (PC++ §2–3) — which variable the optimizer's step
changes and what happens after it. The engine calls ``set_progress(p)`` before each forward,
``before_step()`` after backward, and ``after_step(lr)`` after ``optimizer.step()``; a method
without an update rule gets :class:`NullUpdate`, whose hooks do nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from src.quant.prox import linear_quantizer, prox_conq, prox_proxquant, sign
from src.quant.schedules import linear

PROXES = {"proxquant": prox_proxquant, "conq": prox_conq}


class NullUpdate:
    """Plain training (``fp``, or a quantizer config without an update rule): the optimizer's step
    is the whole update, w_{t+1} = w_t − η_t ∇ℓ(w_t); every hook does nothing."""

    def set_progress(self, p: float) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self, lr: float) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class LatentUpdate(NullUpdate):
    """PC / PC++ (eq. 7): the optimizer updates the latent w* with the gradient taken at F(w*);
    nothing else, except an optional clip of w* to [−1, 1] (BinaryConnect's practice) and an
    optional final stage: once progress ≥ ``freeze_at`` the weights become sign(w) and stop
    training, while every other parameter keeps training (ProxQuant/ConQ recipe)."""

    def __init__(self, weights: list[torch.Tensor], optimizer: Any = None, clip: bool = False,
                 freeze_at: float | None = None):
        self.weights = list(weights)
        self.optimizer = optimizer
        self.clip = clip
        self.freeze_at = freeze_at
        self.progress = 0.0
        self.frozen = False

    def set_progress(self, p: float) -> None:
        self.progress = float(p)
        if self.freeze_at is not None and not self.frozen and p >= self.freeze_at:
            self.freeze()

    @torch.no_grad()
    def freeze(self) -> None:
        for w in self.weights:
            w.copy_(sign(w))
            w.requires_grad_(False)
            w.grad = None
        self.frozen = True

    @torch.no_grad()
    def after_step(self, lr: float) -> None:
        if self.frozen:
            return
        self.apply(lr)
        if self.clip:
            for w in self.weights:
                w.clamp_(-1, 1)

    def apply(self, lr: float) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.progress = state["progress"]
        if state["frozen"] and not self.frozen:
            self.freeze()  # the checkpointed weights are already ±1: sign leaves them as they are


class ReverseProxConnect(LatentUpdate):
    """rPC (PC++ §2.1): w*_{t+1} = P(w*_t) − η_t ∇ℓ(w*_t) — gradient at the continuous weights
    (identity forward), the step applied from P(w*_t) = L_ρ(w*_t) with ρ linear rho_start → rho_end.
    With any optimizer: w ← P(w_old) + (w_new − w_old)."""

    def __init__(self, weights, optimizer=None, rho_start: float = 0.01, rho_end: float = 10.0,
                 varrho: float = 0.0, clip: bool = False, freeze_at: float | None = None):
        super().__init__(weights, optimizer, clip, freeze_at)
        self.rho_start, self.rho_end, self.varrho = rho_start, rho_end, varrho
        self._old: list[torch.Tensor] = []

    def before_step(self) -> None:
        self._old = [w.detach().clone() for w in self.weights]

    def apply(self, lr: float) -> None:
        rho = linear(self.rho_start, self.rho_end, self.progress)
        for w, old in zip(self.weights, self._old):
            w.add_(linear_quantizer(old, rho, self.varrho) - old)


class ProximalUpdate(LatentUpdate):
    """ProxQuant / ConQ (proximal gradient): gradient at the current weights, optimizer step, then
    w ← prox(w, lr·λ_t) and a clip to [−1, 1] (ProxQuant's order). λ_t is linear in the progress from
    lam_start to lam_end (ProxQuant: grows linearly with the epoch; ConQ: constant)."""

    def __init__(self, weights, optimizer=None, prox: str = "proxquant", lam_start: float = 0.0,
                 lam_end: float = 0.03, clip: bool = True, freeze_at: float | None = None):
        super().__init__(weights, optimizer, clip, freeze_at)
        if prox not in PROXES:
            raise ValueError(f"prox {prox!r} is not one of {sorted(PROXES)}")
        self.prox = PROXES[prox]
        self.lam_start, self.lam_end = lam_start, lam_end

    @property
    def lam(self) -> float:
        return linear(self.lam_start, self.lam_end, self.progress)

    def strength(self, w: torch.Tensor, lr: float):
        return lr * self.lam

    def apply(self, lr: float) -> None:
        for w in self.weights:
            w.copy_(self.prox(w, self.strength(w, lr)))


class ProxGenUpdate(ProximalUpdate):
    """ProxGen (Yun et al. 2021; ConQ Table 1 baseline): ProxQuant's prox taken in Adam's diagonal
    metric D = diag(√v̂ + ε): argmin_x ½(x − z)ᵀD(x − z) + lr·λ·r(x), i.e. elementwise strength
    lr·λ / D_ii. Needs an Adam-family optimizer (its exp_avg_sq state).

    The regularizer is ProxQuant's W-shape only: ProxGen is defined as ProxQuant with a
    preconditioner (ConQ §5.2), and ConQ's prox needs a strength below ½, which lr·λ / D_ii exceeds
    wherever v̂ is small."""

    def __init__(self, weights, optimizer=None, lam_start: float = 0.0, lam_end: float = 0.03,
                 clip: bool = True, freeze_at: float | None = None):
        super().__init__(weights, optimizer, "proxquant", lam_start, lam_end, clip, freeze_at)

    def strength(self, w: torch.Tensor, lr: float):
        state = self.optimizer.state.get(w, {}) if self.optimizer is not None else {}
        if "exp_avg_sq" not in state:
            raise ValueError("ProxGen needs an Adam-family optimizer (optimizer=adam or adamw)")
        group = next(g for g in self.optimizer.param_groups if any(p is w for p in g["params"]))
        beta2, eps = group["betas"][1], group["eps"]
        step = float(state["step"])
        denom = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt() + eps
        return lr * self.lam / denom
