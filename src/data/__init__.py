"""Datasets: each builder returns :class:`Splits` (train and test datasets of (image, label))."""

from src.data.splits import Splits

__all__ = ["Splits"]
