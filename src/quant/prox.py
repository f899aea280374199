"""Proximal maps and projections of the binarization papers (elementwise, any tensor shape)."""

from __future__ import annotations

import torch


def sign(w: torch.Tensor) -> torch.Tensor:
    """Projection P_Q onto Q = {±1} (PC++ §2). sign(0) = +1, so the result is always ±1."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
