"""``WrapAccumulator``: the b-bit cyclic accumulator of a BWAA layer (WrapNet, Ni et al.,
ICLR 2021; PC++ §4.2, which uses b = 8 with ±1 weights and activations).

forward(acc), with acc the (integer-valued at evaluation) float accumulation Σ_k x_k w_k:

* training, or evaluation with ``evaluation_form == 'soft'``: cyclic(acc, b, width), the
  continuous period-2^b surrogate (see :mod:`src.accum.cyclic`);
* evaluation with ``evaluation_form == 'binary'`` (the default, the reported metric): the
  exact two's-complement wrap(acc, b).

Everything runs in float32 with autocast disabled. Each forward also records the overflow
rate of acc and the weighted penalty ``penalty_weight · overflow_penalty(acc, b, power)``
(differentiable; :meth:`auxiliary_loss` hands it to the engine once per forward).

*Choices* (WrapNet/PC++ do not give them): width defaults to 2^(b−1)/4 (for b = 8: identity on
|u| <= 96, a band of 32 with slope −3); penalty_power = 2 (squared hinge on the excess divided
by 2^(b−1)); penalty_weight = 0.1 per layer: the normalized penalty of one layer is O(0.01–0.1)
when a few tens of percent of its accumulations overflow by a fraction of the range, so the
sum over a ResNet-18's layers stays below the cross-entropy while keeping a pull towards the
representable range.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from ._checks import assert_exact_fan_in, check_bits, half_range, no_autocast
from .cyclic import check_width, cyclic
from .penalty import overflow_penalty, overflow_rate
from .wrap import wrap

FORMS = ("binary", "soft")


class WrapAccumulator(nn.Module):
    """b-bit wrap-around accumulator; constructor args mirror the Hydra node ``task.accum``.

    Args:
        bits: accumulator width b (PC++: 8).
        width: transition band width of the cyclic activation, in (0, 2^(b−1));
            None means 2^(b−1)/4.
        penalty_weight: λ of the overflow penalty added to the loss (>= 0; 0 disables it).
        penalty_power: power p >= 1 of the penalty (max(|acc| − 2^(b−1), 0) / 2^(b−1))^p.
    """

    def __init__(self, bits: int = 8, width: float | None = None, penalty_weight: float = 0.1,
                 penalty_power: float = 2):
        super().__init__()
        self.bits = check_bits(bits)
        self.width = check_width(half_range(self.bits) / 4 if width is None else width, self.bits)
        if isinstance(penalty_weight, bool) or not isinstance(penalty_weight, (int, float)) \
                or not (penalty_weight >= 0 and math.isfinite(penalty_weight)):
            raise ValueError(f"penalty_weight must be a finite number >= 0, got {penalty_weight!r}")
        self.penalty_weight = float(penalty_weight)
        overflow_penalty(torch.zeros(1), self.bits, penalty_power)  # validates the power
        self.penalty_power = penalty_power
        self.evaluation_form = "binary"
        self.fan_in: int | None = None
        self.last_penalty: torch.Tensor | None = None
        self._last_rate: torch.Tensor | None = None
        self._pending: torch.Tensor | None = None
        # The window's sums live on the module's device (buffers follow .to()) and change in place:
        # a forward then neither syncs with the host nor, under torch.compile, meets a tensor that
        # moved device or a Python counter that changed (each a recompilation). Not in state_dict;
        # under DDP rank 0's window is the one reported.
        self.register_buffer("_sum_rate", torch.zeros(()), persistent=False)
        self.register_buffer("_sum_penalty", torch.zeros(()), persistent=False)
        self.register_buffer("_forwards", torch.zeros((), dtype=torch.int64), persistent=False)

    def set_fan_in(self, fan_in: int) -> None:
        """Record the fan-in of the layer this accumulator serves, after checking that its
        ±1 accumulations are exact in float32 (fan_in < 2^24)."""
        self.fan_in = assert_exact_fan_in(fan_in)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        if self.evaluation_form not in FORMS:
            raise ValueError(f"evaluation_form must be one of {FORMS}, got {self.evaluation_form!r}")
        with no_autocast(acc.device):
            x = acc.float()
            self._last_rate = overflow_rate(x, self.bits)
            penalty = self.penalty_weight * overflow_penalty(x, self.bits, self.penalty_power)
            if self.training or self.evaluation_form == "soft":
                out = cyclic(x, self.bits, self.width)
            else:
                out = wrap(x, self.bits)
        self.last_penalty = penalty
        self._pending = penalty if self.training else None
        self._sum_rate.add_(self._last_rate)
        self._sum_penalty.add_(penalty.detach())
        self._forwards.add_(1)
        return out

    @property
    def num_forwards(self) -> int:
        """Forwards since :meth:`reset_stats`."""
        return int(self._forwards)

    @property
    def last_overflow_rate(self) -> float:
        """Overflow rate of the last forward's accumulation (NaN before any forward)."""
        return float("nan") if self._last_rate is None else float(self._last_rate)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The weighted penalty of the last training forward, returned once (then None), so a
        stale graph is never added to a later step's loss. None in evaluation."""
        pending, self._pending = self._pending, None
        return pending

    def reset_stats(self) -> None:
        """Start a new averaging window (e.g. an epoch) for :meth:`stats`."""
        for total in (self._sum_rate, self._sum_penalty, self._forwards):
            total.zero_()

    def window_state(self) -> dict[str, Any]:
        """The window of :meth:`stats` so far (a mid-epoch checkpoint keeps it)."""
        return {"sum_rate": self._sum_rate.detach().cpu().clone(), "sum_penalty": self._sum_penalty.detach().cpu().clone(),
                "num_forwards": self.num_forwards}

    def load_window_state(self, state: dict[str, Any]) -> None:
        self._sum_rate.copy_(state["sum_rate"])
        self._sum_penalty.copy_(state["sum_penalty"])
        self._forwards.fill_(int(state["num_forwards"]))

    def stats(self) -> dict[str, float]:
        """Mean over the forwards since :meth:`reset_stats` of the per-forward overflow rate
        and weighted penalty (NaN when there was none)."""
        if self.num_forwards == 0:
            return {"overflow_rate": float("nan"), "penalty": float("nan")}
        n = self.num_forwards
        return {"overflow_rate": float(self._sum_rate) / n, "penalty": float(self._sum_penalty) / n}

    def __getstate__(self):
        """Drop the last forward's penalty graph so the module can be deep-copied or pickled."""
        state = dict(self.__dict__)
        state["last_penalty"] = None if self.last_penalty is None else self.last_penalty.detach()
        state["_pending"] = None
        return state

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, width={self.width:g}, penalty_weight={self.penalty_weight:g}, "
                f"penalty_power={self.penalty_power}")
