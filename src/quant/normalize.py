"""The argument of a quantized layer's pairs: u = N(w) for the weights (``quantizer.normalize``) and
a' = N(a) for the binarized inputs (``quantizer.activation_normalize``). F and B are evaluated at u;
the update rules act in the same u coordinates (``to_unit`` / ``from_unit``).

Weights, with statistics per output channel (dims 1.. of the weight) or over the whole layer:
  none                 u = w                                        (BinaryNet, ProxQuant, Bi-Real, ReActNet)
  layer_mean_abs       u = w / mean|w|, the statistic detached      (PC++ §4.3 protocol (1))
  channel_mean_abs     u_c = w_c / mean|w_c|, detached
  channel_standardize  u_c = (w_c − mean w_c) / std w_c, unbiased std, in autograd
                       (IR-Net ir_1w1a.py and RBNN binarized_modules.py: Libra-PB's weight part)
Activations: none, or sample_standardize: a' = (a − mean a) / std a per sample over every non-batch
dim, in autograd (RBNN binarized_modules.py).
"""

from __future__ import annotations

import torch

WEIGHT_NORMALIZATIONS = ("none", "layer_mean_abs", "channel_mean_abs", "channel_standardize")
ACTIVATION_NORMALIZATIONS = ("none", "sample_standardize")

Statistic = tuple[torch.Tensor | None, torch.Tensor | None]  # (shift m, divisor d): u = (w − m) / d


def check_choice(key: str, value: str, choices: tuple[str, ...], meaning: str) -> None:
    """Refuse an unknown option with the valid ones and what the key means."""
    if value not in choices:
        raise ValueError(f"quantizer.{key}={value!r} is not a valid choice; {key} is {meaning}. "
                         f"Valid choices: {', '.join(choices)}.")


def _channel_dims(w: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(1, w.dim()))


def statistic(w: torch.Tensor, kind: str) -> Statistic:
    """(m, d) with u = (w − m)/d; None where the map has no shift or no divisor. Mean-abs divisors
    are detached (a constant per step); the standardisation keeps its graph, as IR-Net and RBNN."""
    if kind == "none":
        return None, None
    if kind == "layer_mean_abs":
        return None, w.detach().abs().mean()
    if kind == "channel_mean_abs":
        return None, w.detach().abs().mean(dim=_channel_dims(w), keepdim=True)
    if kind == "channel_standardize":
        dims = _channel_dims(w)
        m = w.mean(dim=dims, keepdim=True)
        return m, (w - m).std(dim=dims, keepdim=True)
    check_choice("normalize", kind, WEIGHT_NORMALIZATIONS, "the argument u of F and B")
    raise AssertionError  # unreachable: check_choice raised


def normalize_weight(w: torch.Tensor, kind: str) -> torch.Tensor:
    """u = N(w), differentiable where the original is."""
    m, d = statistic(w, kind)
    u = w if m is None else w - m
    return u if d is None else u / d


@torch.no_grad()
def to_unit(w: torch.Tensor, kind: str) -> tuple[torch.Tensor, Statistic]:
    """u = N(w) and the statistic, without a graph: what an update rule maps before ``from_unit``."""
    stat = statistic(w.detach(), kind)
    m, d = stat
    u = w.detach() if m is None else w.detach() - m
    return (u if d is None else u / d), stat


@torch.no_grad()
def from_unit(u: torch.Tensor, stat: Statistic) -> torch.Tensor:
    """w = u·d + m with the statistic ``to_unit`` returned (the inverse map at that statistic)."""
    m, d = stat
    w = u if d is None else u * d
    return w if m is None else w + m


def normalize_activation(x: torch.Tensor, kind: str) -> torch.Tensor:
    """a' = N(a) per sample (RBNN), or a itself."""
    if kind == "none":
        return x
    if kind == "sample_standardize":
        dims = _channel_dims(x)
        centred = x - x.mean(dim=dims, keepdim=True)
        return centred / centred.std(dim=dims, keepdim=True)
    check_choice("activation_normalize", kind, ACTIVATION_NORMALIZATIONS,
                 "the argument of the activation pair")
    raise AssertionError  # unreachable: check_choice raised
