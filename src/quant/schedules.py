"""Schedules over the training progress p = t/T ∈ [0, 1]."""

from __future__ import annotations

import math


def linear(start: float, end: float, p: float) -> float:
    """start + p·(end − start): μ of BNN++ (5 → 30), ρ of PC/PQ/rPC (0.01 → 10), λ of ProxQuant."""
    return start + p * (end - start)


def log_linear(start: float, end: float, p: float) -> float:
    """10^(log10 start + p·(log10 end − log10 start)): IR-Net's t schedule (Tmin → Tmax)."""
    return 10 ** (math.log10(start) + p * (math.log10(end) - math.log10(start)))


def irnet_tk(t_min: float, t_max: float, p: float) -> tuple[float, float]:
    """IR-Net's EDE control variables: t on the log-linear schedule, k = max(1/t, 1)."""
    t = log_linear(t_min, t_max, p)
    return t, max(1.0 / t, 1.0)
