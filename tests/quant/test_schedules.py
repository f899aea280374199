"""Schedules over p = t/T: linear endpoints and IR-Net's t, k (NOTES.md)."""

from __future__ import annotations

import math

import pytest

from src.quant.schedules import irnet_tk, linear, log_linear


def test_linear_goes_from_start_to_end():
    assert linear(5.0, 30.0, 0.0) == 5.0 and linear(5.0, 30.0, 1.0) == 30.0 and linear(5.0, 30.0, 0.4) == 15.0


@pytest.mark.parametrize("t_min,t_max", [(0.1, 10.0), (0.01, 10.0)])
def test_irnet_t_is_log_linear_and_k_is_max_inverse_t_one(t_min, t_max):
    for p in (0.0, 0.25, 0.5, 1.0):
        t, k = irnet_tk(t_min, t_max, p)
        assert math.isclose(t, 10 ** (math.log10(t_min) + p * (math.log10(t_max) - math.log10(t_min))))
        assert k == max(1 / t, 1.0)
    assert math.isclose(irnet_tk(t_min, t_max, 0.0)[1], 1 / t_min) and irnet_tk(t_min, t_max, 1.0)[1] == 1.0
    assert math.isclose(log_linear(t_min, t_max, 0.5), math.sqrt(t_min * t_max))
