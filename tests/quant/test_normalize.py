"""The argument of F and B: each normalisation against its formula, ``from_unit`` inverting
``to_unit``, gradients only through the standardisation, and the per-sample input standardisation."""

from __future__ import annotations

import pytest
import torch

from src.quant.normalize import (WEIGHT_NORMALIZATIONS, from_unit, normalize_activation, normalize_weight,
                                 to_unit)

W = torch.randn(5, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.1 + 0.02


def test_each_normalisation_is_its_formula():
    torch.testing.assert_close(normalize_weight(W, "none"), W)
    torch.testing.assert_close(normalize_weight(W, "layer_mean_abs"), W / W.abs().mean())
    for c in range(5):
        torch.testing.assert_close(normalize_weight(W, "channel_mean_abs")[c], W[c] / W[c].abs().mean())
        z = (W[c] - W[c].mean()) / W[c].flatten().std(unbiased=True)
        torch.testing.assert_close(normalize_weight(W, "channel_standardize")[c], z)


@pytest.mark.parametrize("kind", WEIGHT_NORMALIZATIONS)
def test_from_unit_inverts_to_unit(kind):
    u, stat = to_unit(W, kind)
    torch.testing.assert_close(u, normalize_weight(W, kind))
    torch.testing.assert_close(from_unit(u, stat), W)
    assert not u.requires_grad


def test_only_the_standardisation_is_differentiated():
    """Mean-abs statistics are constants (∂u/∂w = 1/n); the standardisation keeps its graph (IR-Net, RBNN):
    its gradient is orthogonal to the constant and to w − mean per channel."""
    w = W.clone().requires_grad_(True)
    g = torch.randn_like(W, generator=torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad(normalize_weight(w, "layer_mean_abs"), w, g)
    torch.testing.assert_close(grad, g / W.abs().mean())
    (grad,) = torch.autograd.grad(normalize_weight(w, "channel_standardize"), w, g)
    centred = W - W.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(grad.sum(dim=(1, 2, 3)), torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close((grad * centred).sum(dim=(1, 2, 3)), torch.zeros(5, dtype=torch.float64))


def test_activations_are_standardised_per_sample():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3 + 1
    y = normalize_activation(x, "sample_standardize")
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(y.flatten(1).std(dim=1), torch.ones(4, dtype=torch.float64))
    assert normalize_activation(x, "none") is x


def test_unknown_choice_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"quantizer.normalize='std' is not a valid choice.*channel_standardize"):
        normalize_weight(W, "std")
    with pytest.raises(ValueError, match=r"quantizer.activation_normalize='batch'.*none, sample_standardize"):
        normalize_activation(W, "batch")
