"""Update rules: the third axis of a method (PC++ §2–3) — which variable the optimizer's step
changes and what happens after it. The engine calls ``set_progress(p)`` before each forward,
``before_step()`` after backward, and ``after_step(lr)`` after ``optimizer.step()``; a method
without an update rule gets :class:`NullUpdate`, whose hooks do nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from src.quant.normalize import from_unit, to_unit
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
    training, while every other parameter keeps training (ProxQuant/ConQ recipe).

    Everything a rule does to a weight it does in the layer's coordinates u = N(w)
    (src.quant.normalize): ``units[i]`` names weight i's normalisation ('none' for all when not
    given, i.e. w itself). The statistic is taken just before the map and kept for the way back,
    w ← from_unit(map(u)); e.g. clip is |u| ≤ 1 and freezing gives w = n·sign(u)."""

    def __init__(self, weights: list[torch.Tensor], optimizer: Any = None, clip: bool = False,
                 freeze_at: float | None = None, units: list[str] | None = None):
        self.weights = list(weights)
        self.optimizer = optimizer
        self.clip = clip
        self.freeze_at = freeze_at
        self.units = ["none"] * len(self.weights) if units is None else list(units)
        if len(self.units) != len(self.weights):
            raise ValueError(f"{len(self.units)} units for {len(self.weights)} weights")
        self.progress = 0.0
        self.frozen = False

    def set_progress(self, p: float) -> None:
        self.progress = float(p)
        if self.freeze_at is not None and not self.frozen and p >= self.freeze_at:
            self.freeze()

    @torch.no_grad()
    def map_units(self, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
        """w_i ← from_unit(fn(u_i, i)) with (u_i, n_i) = to_unit(w_i)."""
        for i, (w, kind) in enumerate(zip(self.weights, self.units)):
            u, stat = to_unit(w, kind)
            w.copy_(from_unit(fn(u, i), stat))

    @torch.no_grad()
    def freeze(self) -> None:
        self.map_units(lambda u, i: sign(u))
        for w in self.weights:
            w.requires_grad_(False)
            w.grad = None
        self.frozen = True

    @torch.no_grad()
    def after_step(self, lr: float) -> None:
        if self.frozen:
            return
        self.apply(lr)
        step = self.unit_map(lr)
        if step is None and not self.clip:
            return
        # the rule's map and the clip in one pass, at one statistic
        self.map_units(lambda u, i: self._clipped(u if step is None else step(u, i)))

    def apply(self, lr: float) -> None:
        """A change of w itself after the optimizer step (rPC); nothing by default."""

    def unit_map(self, lr: float) -> Callable[[torch.Tensor, int], torch.Tensor] | None:
        """u_i ↦ the new u_i after the optimizer step (a prox), before the clip; None: no map."""
        return None

    def _clipped(self, u: torch.Tensor) -> torch.Tensor:
        return u.clamp(-1, 1) if self.clip else u

    def state_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.progress = state["progress"]
        if state["frozen"] and not self.frozen:
            self.freeze()  # the checkpointed weights are already n·sign(u): freezing again leaves them


class ReverseProxConnect(LatentUpdate):
    """rPC (PC++ §2.1): w*_{t+1} = P(w*_t) − η_t ∇ℓ(w*_t) — gradient at the continuous weights
    (identity forward), the step applied from P(w*_t) = L_ρ(w*_t) with ρ linear rho_start → rho_end.
    With any optimizer: w ← from_unit(L_ρ(u_old)) + (w_new − w_old)."""

    def __init__(self, weights, optimizer=None, rho_start: float = 0.01, rho_end: float = 10.0,
                 varrho: float = 0.0, clip: bool = False, freeze_at: float | None = None, units=None):
        super().__init__(weights, optimizer, clip, freeze_at, units)
        self.rho_start, self.rho_end, self.varrho = rho_start, rho_end, varrho
        self._old: list[torch.Tensor] = []

    def before_step(self) -> None:
        self._old = [w.detach().clone() for w in self.weights]

    def apply(self, lr: float) -> None:
        rho = linear(self.rho_start, self.rho_end, self.progress)
        for w, old, kind in zip(self.weights, self._old, self.units):
            u, stat = to_unit(old, kind)
            w.add_(from_unit(linear_quantizer(u, rho, self.varrho), stat) - old)


class ProximalUpdate(LatentUpdate):
    """ProxQuant / ConQ (proximal gradient): gradient at the current weights, optimizer step, then
    u ← prox(u, lr·λ_t) and a clip to [−1, 1] (ProxQuant's order: main_binary_reg.py). λ_t is linear
    in the progress from lam_start to lam_end (ProxQuant: grows linearly with the epoch; ConQ:
    constant)."""

    def __init__(self, weights, optimizer=None, prox: str = "proxquant", lam_start: float = 0.0,
                 lam_end: float = 0.03, clip: bool = True, freeze_at: float | None = None, units=None):
        super().__init__(weights, optimizer, clip, freeze_at, units)
        if prox not in PROXES:
            raise ValueError(f"prox {prox!r} is not one of {sorted(PROXES)}")
        self.prox = PROXES[prox]
        self.lam_start, self.lam_end = lam_start, lam_end

    @property
    def lam(self) -> float:
        return linear(self.lam_start, self.lam_end, self.progress)

    def strength(self, w: torch.Tensor, lr: float):
        return lr * self.lam

    def unit_map(self, lr: float):
        strengths = [self.strength(w, lr) for w in self.weights]
        return lambda u, i: self.prox(u, strengths[i])


class LinearQuantizerProxUpdate(LatentUpdate):
    """PQ as PC++ runs it (§2, §4.1: "similar to Bai et al., we apply the LinearQuantizer (LQ), see
    (10), with initial ρ0 = 0.01 and linearly increase to ρT = 10"): ProxQuant's prox-gradient loop —
    gradient at the current weights, optimizer step, then u ← L_{ρ_t}^ϱ(u) (PC++ eq. 10) and ProxQuant's
    clip to [−1, 1] — with ρ_t = rho_start + p·(rho_end − rho_start). ρ is the prox's strength, so
    the learning rate does not enter it."""

    def __init__(self, weights, optimizer=None, rho_start: float = 0.01, rho_end: float = 10.0,
                 varrho: float = 0.0, clip: bool = True, freeze_at: float | None = None, units=None):
        super().__init__(weights, optimizer, clip, freeze_at, units)
        self.rho_start, self.rho_end, self.varrho = rho_start, rho_end, varrho

    @property
    def rho(self) -> float:
        return linear(self.rho_start, self.rho_end, self.progress)

    def unit_map(self, lr: float):
        rho = self.rho
        return lambda u, i: linear_quantizer(u, rho, self.varrho)


class ProxGenUpdate(ProximalUpdate):
    """ProxGen (Yun et al. 2021; ConQ Table 1 baseline): ProxQuant's prox taken in Adam's diagonal
    metric D = diag(√v̂ + ε): argmin_x ½(x − z)ᵀD(x − z) + lr·λ·r(x), i.e. elementwise strength
    lr·λ / D_ii. Needs an Adam-family optimizer (its exp_avg_sq state).

    The regularizer is ProxQuant's W-shape only: ProxGen is defined as ProxQuant with a
    preconditioner (ConQ §5.2), and ConQ's prox needs a strength below ½, which lr·λ / D_ii exceeds
    wherever v̂ is small."""

    def __init__(self, weights, optimizer=None, lam_start: float = 0.0, lam_end: float = 0.03,
                 clip: bool = True, freeze_at: float | None = None, units=None):
        super().__init__(weights, optimizer, "proxquant", lam_start, lam_end, clip, freeze_at, units)

    def strength(self, w: torch.Tensor, lr: float):
        if lr * self.lam < 0:  # lr·λ / D with D > 0: the sign is that of lr·λ, known on the host
            raise ValueError(f"ProxGen's prox strength lr·λ must be >= 0, got lr={lr}, λ={self.lam}")
        state = self.optimizer.state.get(w, {}) if self.optimizer is not None else {}
        if "exp_avg_sq" not in state:
            raise ValueError("ProxGen needs an Adam-family optimizer (optimizer=adam or adamw)")
        group = next(g for g in self.optimizer.param_groups if any(p is w for p in g["params"]))
        beta2, eps = group["betas"][1], group["eps"]
        step = float(state["step"])
        denom = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt() + eps
        return lr * self.lam / denom
