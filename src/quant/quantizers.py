"""Forward–backward quantizers (PC++ §3, Table 1, App. F).

Each method is a pair: F applied in the forward pass and B multiplying the incoming gradient in
the backward pass, w*_{t+1} = w*_t − η_t·B(w*_t)·∇ℓ(F(w*_t))  (PC++ eq. 7). A pair is a small
subclass that states F and B as plain tensor functions of the current schedule point, registered
under its name with ``@register_pair`` (src.quant.registry); a method's config names its pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from src.quant.prox import linear_quantizer, sign
from src.quant.registry import register_pair
from src.quant.schedules import irnet_tk, linear, log_linear


class _ForwardBackward(torch.autograd.Function):
    """y = F(w) forward; ∂ℓ/∂w = B(w)·∂ℓ/∂y backward (PC++ eq. 7). B(w) is computed in the forward
    pass together with F (they share intermediate terms) and saved in place of w."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, quantizer: "ForwardBackwardQuantizer") -> torch.Tensor:
        if not ctx.needs_input_grad[0]:
            return quantizer.forward_map(w)
        y, b = quantizer.maps(w)
        ctx.save_for_backward(b)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (b,) = ctx.saved_tensors
        return grad * b.to(grad.dtype), None


class ForwardBackwardQuantizer(nn.Module):
    """Base class: subclasses define ``forward_map`` (F) and ``backward_map`` (B) at the current
    schedule point, set by ``set_progress(p)`` with p = t/T ∈ [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.progress = 0.0

    def set_progress(self, p: float) -> None:
        self.progress = float(p)

    def forward_map(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward_map(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def maps(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F(w), B(w)) in one pass; methods whose F and B share terms override it for speed."""
        return self.forward_map(w), self.backward_map(w)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _ForwardBackward.apply(w, self)

    def binarize(self, w: torch.Tensor) -> torch.Tensor:
        """The truly binary form used in evaluation."""
        return sign(w)

    def extra_repr(self) -> str:
        return f"progress={self.progress:.3f}"


def _ones(w: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(w)


# --- shared pieces ------------------------------------------------------------------------

def sign_swish(w: torch.Tensor, mu: float) -> torch.Tensor:
    """SS(w) = (μw/2)·tanh'(μw/2) + tanh(μw/2), tanh' = sech² (Darabi et al.; PC++ Example 3)."""
    return sign_swish_maps(w, mu)[0]


def sign_swish_grad(w: torch.Tensor, mu: float) -> torch.Tensor:
    """∇SS(w) = μ[1 − (μw/2)·tanh(μw/2)]·tanh'(μw/2) (PC++ Example 2)."""
    return sign_swish_maps(w, mu)[1]


def sign_swish_maps(w: torch.Tensor, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(SS(w), ∇SS(w)) sharing a = μw/2, t = tanh(a) and sech²(a) = 1 − t²: one tanh, in-place
    arithmetic (activation-sized tensors under BWA make this the method's main cost)."""
    a = w * (mu / 2)
    t = torch.tanh(a)
    sech2 = t.square().neg_().add_(1)
    ss = torch.addcmul(t, a, sech2)
    grad = (a * t).neg_().add_(1).mul_(sech2).mul_(mu)
    return ss, grad


def approx_sign(w: torch.Tensor) -> torch.Tensor:
    """Bi-Real's ApproxSign: −1 (w < −1), w² + 2w (−1 ≤ w < 0), −w² + 2w (0 ≤ w < 1), 1 (w ≥ 1)."""
    c = w.clamp(-1, 1)
    return 2 * c - c * c.abs()


def approx_sign_grad(w: torch.Tensor) -> torch.Tensor:
    """d ApproxSign / dw = max(2 − 2|w|, 0)."""
    return (2 - 2 * w.abs()).clamp_min(0)


class SignForward(ForwardBackwardQuantizer):
    """Methods whose forward quantizer is the projection F = sign (sign(0) = +1); they differ in B."""

    def forward_map(self, w):
        return sign(w)


# --- Table 1 --------------------------------------------------------------------------------

@register_pair("identity")
class Identity(ForwardBackwardQuantizer):
    """FP: F = identity, B = identity. Also the training-time pair of the methods whose gradient is
    taken at the continuous weights (PQ, rPC, ConQ, ProxGen, PTB): their update rules do the work."""

    def forward_map(self, w):
        return w

    def backward_map(self, w):
        return _ones(w)


@register_pair("bc")
class BinaryConnect(SignForward):
    """BC: F = P_Q = sign, B = identity (the straight-through estimator of PC++ eq. 2)."""

    def backward_map(self, w):
        return _ones(w)


@register_pair("pc")
class ProxConnect(ForwardBackwardQuantizer):
    """PC: F = L_ρ^ϱ (PC++ eq. 10) with ρ linear from rho_start to rho_end, B = identity."""

    def __init__(self, rho_start: float = 0.01, rho_end: float = 10.0, varrho: float = 0.0):
        super().__init__()
        self.rho_start, self.rho_end, self.varrho = rho_start, rho_end, varrho

    @property
    def rho(self) -> float:
        return linear(self.rho_start, self.rho_end, self.progress)

    def forward_map(self, w):
        return linear_quantizer(w, self.rho, self.varrho)

    def backward_map(self, w):
        return _ones(w)


@register_pair("bnn")
class BNN(SignForward):
    """BNN (Hubara et al.): F = sign, B = 1_[−1,1], i.e. (T∘P, T'∘P) with T = hard tanh and P of
    PC++ eq. (9) (Example 1)."""

    def backward_map(self, w):
        return (w.abs() <= 1).to(w.dtype)


MU_IN = ("transform", "prox")


def _check_mu_in(mu_in: str) -> str:
    if mu_in not in MU_IN:
        raise ValueError(
            f"mu_in={mu_in!r} is not a valid choice; mu_in says where μ sits in F = T∘P (PC++ eq. 5-6): "
            f"'transform' (T = SS_μ, P = id: B = ∇SS_μ, peak μ, the printed Example 2 formula) or 'prox' "
            f"(T = SS_1, P(x) = μx: B = T'∘P = ∇SS_μ/μ, peak 1). Valid choices: {', '.join(MU_IN)}.")
    return mu_in


def _sign_swish_backward(w: torch.Tensor, mu: float, mu_in: str) -> torch.Tensor:
    grad = sign_swish_grad(w, mu)
    return grad if mu_in == "transform" else grad.div_(mu)


@register_pair("bnnp")
class BNNPlus(SignForward):
    """BNN+ (Darabi et al.): F = sign, B = ∇SS with fixed μ (PC++ Example 2; not in PC++).
    ``mu_in='prox'``: B = ∇SS_μ/μ (see BNNPlusPlus)."""

    def __init__(self, mu: float = 5.0, mu_in: str = "transform"):
        super().__init__()
        self.mu = mu
        self.mu_in = _check_mu_in(mu_in)

    def backward_map(self, w):
        return _sign_swish_backward(w, self.mu, self.mu_in)


@register_pair("bnnpp")
class BNNPlusPlus(ForwardBackwardQuantizer):
    """BNN++ (PC++ Example 3): F = SS_μ, μ linear from mu_start to mu_end, and
    - ``mu_in='transform'`` (default, the printed formula): B = ∇SS_μ = F', i.e. T = SS_μ, P = id;
    - ``mu_in='prox'``: SS_μ(x) = SS_1(μx), so F = T∘P with T = SS_1, P(x) = μx, and PC++ eq. (5)-(6)
      give B = T'∘P = ∇SS_μ/μ (peak 1 at 0, like BNN's 1_[−1,1]). P is monotone: in PC++ (Corollary 1)."""

    def __init__(self, mu_start: float = 5.0, mu_end: float = 30.0, mu_in: str = "transform"):
        super().__init__()
        self.mu_start, self.mu_end = mu_start, mu_end
        self.mu_in = _check_mu_in(mu_in)

    @property
    def mu(self) -> float:
        return linear(self.mu_start, self.mu_end, self.progress)

    def forward_map(self, w):
        return sign_swish(w, self.mu)

    def backward_map(self, w):
        return _sign_swish_backward(w, self.mu, self.mu_in)

    def maps(self, w):
        mu = self.mu
        f, b = sign_swish_maps(w, mu)
        return f, (b if self.mu_in == "transform" else b.div_(mu))


# --- App. F ----------------------------------------------------------------------------------

@register_pair("bireal")
class BiReal(SignForward):
    """Bi-Real Net's activation pair: F = sign, B = ApproxSign' = max(2 − 2|x|, 0) (Bi-Real-net
    birealnet.py; not in PC++). As a weight pair it is PC++ App. F's reading (config ``bireal_appf``);
    Bi-Real's own weights go through clamp(W, −1, 1), i.e. the BNN pair (config ``bireal``)."""

    def backward_map(self, w):
        return approx_sign_grad(w)


@register_pair("polyp")
class PolyPlus(ForwardBackwardQuantizer):
    """Poly+ (PC++ App. F): F(w) = ApproxSign(c·w), B = F' = c·ApproxSign'(c·w), with the coefficient
    c growing log-linearly from c_start to c_end so that F equals sign outside |w| < 1/c_end."""

    def __init__(self, c_start: float = 1.0, c_end: float = 100.0):
        super().__init__()
        self.c_start, self.c_end = c_start, c_end

    @property
    def c(self) -> float:
        return log_linear(self.c_start, self.c_end, self.progress)

    def forward_map(self, w):
        return approx_sign(self.c * w)

    def backward_map(self, w):
        return self.c * approx_sign_grad(self.c * w)


@register_pair("ede")
class EDE(SignForward):
    """IR-Net's EDE: F = sign, B = k·t·(1 − tanh²(t·w)), t: Tmin → Tmax log-linearly, k = max(1/t, 1)."""

    def __init__(self, t_min: float = 0.1, t_max: float = 10.0):
        super().__init__()
        self.t_min, self.t_max = t_min, t_max

    def backward_map(self, w):
        t, k = irnet_tk(self.t_min, self.t_max, self.progress)
        return k * t * (1 - torch.tanh(t * w) ** 2)


@register_pair("edep")
class EDEPlus(EDE):
    """EDE+ (PC++ App. F): F = k·tanh(t·w) with its true derivative B = k·t·(1 − tanh²(t·w))."""

    def forward_map(self, w):
        t, k = irnet_tk(self.t_min, self.t_max, self.progress)
        return k * torch.tanh(t * w)


@register_pair("rbnn")
class RBNN(SignForward):
    """RBNN's weight pair: F = sign, B = k·max(√2·t − t²|w|, 0), the derivative of
    k(√2·t·w − t²·w|w|/2) on |w| ≤ √2/t; t, k on the IR-Net schedule with Tmin = 0.01, Tmax = 10
    (RBNN binarized_modules.py BinaryQuantize; not in PC++)."""

    def __init__(self, t_min: float = 0.01, t_max: float = 10.0):
        super().__init__()
        self.t_min, self.t_max = t_min, t_max

    def backward_map(self, w):
        t, k = irnet_tk(self.t_min, self.t_max, self.progress)
        return k * (math.sqrt(2) * t - t * t * w.abs()).clamp_min(0)


@register_pair("rbnn_activation")
class RBNNActivation(RBNN):
    """RBNN's activation pair: F = sign, B = max(√2·t_a − t_a²|x|, 0) with k = 1 and t_a = max(t, 1),
    t on the weights' schedule (RBNN binarized_modules.py BinaryQuantize_a; not in PC++)."""

    def backward_map(self, w):
        t = max(irnet_tk(self.t_min, self.t_max, self.progress)[0], 1.0)
        return (math.sqrt(2) * t - t * t * w.abs()).clamp_min(0)


@register_pair("react")
class ReAct(SignForward):
    """ReActNet's RSign: F(x) = sign(x + β), B(x) = ApproxSign'(x + β), with a learnable shift β per
    channel (``bind_channels`` is called by the layer factory: input channels for activations, output
    channels for weights in the App. F reading ``react_appf``). Before binding, or with
    ``learnable_shift=False``, β = 0. The pair (sign, ApproxSign') at the shifted point is what is implemented.
    Corollary 1 (src.quant.theory): NOT in PC++, like Bi-Real — the shift only translates P, and with
    F = sign P is constant on each side of −β while B = ApproxSign' varies there. PC++ App. B/F call
    ReActNet a special case; that holds for the shift, and for a B constant on the support (e.g. the
    BNN pair (sign, 1_[−1,1]) shifted by β), not for the ApproxSign' backward."""

    def __init__(self, learnable_shift: bool = True):
        super().__init__()
        self.learnable_shift = learnable_shift
        self.shift: nn.Parameter | None = None
        self.channel_dim = 1

    def bind_channels(self, channels: int, channel_dim: int) -> None:
        if self.learnable_shift:
            self.shift = nn.Parameter(torch.zeros(channels))
            self.channel_dim = channel_dim

    def _shifted(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift is None:
            return x
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        return x + self.shift.view(shape).to(x.dtype)

    def backward_map(self, w):
        return approx_sign_grad(w)

    def forward(self, x):
        return _ForwardBackward.apply(self._shifted(x), self)  # β receives B(x + β)·g via autograd

    def binarize(self, x):
        return sign(self._shifted(x))
