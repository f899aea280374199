"""Flip ratio and share of latent weights at ±1, against counts made by hand."""

from __future__ import annotations

import torch

from src.quant.monitor import BinarizationMonitor


def test_flip_ratio_and_saturation():
    a = torch.tensor([0.5, -0.2, 0.0, 1.3])
    b = torch.tensor([[-1.0, 0.1], [0.7, -0.4]])
    monitor = BinarizationMonitor([a, b])
    a.copy_(torch.tensor([-0.5, -0.2, -0.1, 1.0]))  # two flips (0.5 -> -0.5, 0.0 (+1) -> -0.1)
    b.copy_(torch.tensor([[-1.0, -0.1], [0.7, -0.4]]))  # one flip
    stats = monitor.epoch_metrics()
    assert stats["flip_ratio"] == 3 / 8
    assert stats["latent_at_pm1"] == 2 / 8  # 1.0 and -1.0
    assert monitor.epoch_metrics()["flip_ratio"] == 0.0  # measured against the previous epoch


def test_no_quantized_layer_gives_no_metrics():
    assert BinarizationMonitor([]).epoch_metrics() == {}
