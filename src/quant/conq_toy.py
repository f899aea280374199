"""ConQ's one-dimensional example (Migliorati et al. 2024, Sec. 4.3 and Fig. 2).

L(x) = ½(x − α)² (1-strongly convex, minimizer α > 0, so the correct binary value is +1), and the
proximal gradient algorithm of ConQ eq. (5), x_{t+1} = prox_{λτr}(x_t − τ∇L(x_t)), with prox
strength s = λτ, run with the project's own proximal maps:
- ConQ: r(x) = max{1 − x², |x| − 1} (concave on [−1, 1]), ``prox_conq``;
- ProxQuant: r(x) = min{|x − 1|, |x + 1|} (W-shaped), ``prox_proxquant``.
F = L + λR is the objective both minimize. Everything is float64 and vectorized over starting
points, so a whole range of x0 is iterated at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from src.quant.prox import prox_conq, prox_proxquant

ALPHA = 0.4
TAU = 1e-2
LAMBDAS = (0.3, 0.6, 1.5)
METHODS = ("conq", "proxquant")


def regularizer(method: str, x: torch.Tensor) -> torch.Tensor:
    """r(x) of ConQ (concave) or ProxQuant (W-shaped)."""
    if method == "conq":
        return torch.maximum(1 - x**2, x.abs() - 1)
    if method == "proxquant":
        return (x.abs() - 1).abs()
    raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")


def objective(method: str, x: torch.Tensor, lam: float, alpha: float = ALPHA) -> torch.Tensor:
    """F(x) = ½(x − α)² + λ r(x)."""
    return 0.5 * (x - alpha) ** 2 + lam * regularizer(method, x)


def step(method: str, x: torch.Tensor, lam: float, alpha: float = ALPHA, tau: float = TAU) -> torch.Tensor:
    """One proximal gradient step, ConQ eq. (5): prox_{λτr}(x − τ(x − α))."""
    z = x - tau * (x - alpha)
    if method == "conq":
        return prox_conq(z, lam * tau)
    if method == "proxquant":
        return prox_proxquant(z, lam * tau)
    raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")


def trajectory(method: str, x0, lam: float, steps: int, alpha: float = ALPHA, tau: float = TAU) -> torch.Tensor:
    """x_0 … x_steps for every starting point: shape (steps + 1, len(x0))."""
    x = torch.as_tensor(x0, dtype=torch.float64).reshape(-1)
    out = [x]
    for _ in range(steps):
        x = step(method, x, lam, alpha, tau)
        out.append(x)
    return torch.stack(out)


@dataclass(frozen=True)
class Limit:
    x: torch.Tensor       # the last iterate of every starting point
    steps: torch.Tensor   # iterations until it stopped moving (max_steps where it never did)


def limit(method: str, x0, lam: float, alpha: float = ALPHA, tau: float = TAU, max_steps: int = 20_000,
          tol: float = 1e-12) -> Limit:
    """Iterate until no point moves by more than ``tol`` (or ``max_steps``)."""
    x = torch.as_tensor(x0, dtype=torch.float64).reshape(-1).clone()
    steps = torch.full_like(x, float(max_steps))
    moving = torch.ones_like(x, dtype=torch.bool)
    for t in range(max_steps):
        new = step(method, x, lam, alpha, tau)
        settled = moving & ((new - x).abs() <= tol)
        steps[settled] = t
        moving &= ~settled
        x = new
        if not moving.any():
            break
    return Limit(x, steps)


def paper_threshold(method: str, lam: float, alpha: float = ALPHA, tau: float = TAU) -> float | None:
    """The boundary of the region of attraction of +1 that the paper states (Sec. 4.3): ConQ
    converges to +1 iff x0 > α/(1 − 2λ) when F has two minima (λ > ½ with α/(1 − 2λ) > −1, i.e. the
    unstable fixed point of the inner branch lies inside (−1, 1)), and from every x0 otherwise;
    ProxQuant iff x0 > −τα/(1 − τ) whenever F has a second minimum at α − λ < 0 (λ > α), and from every
    x0 otherwise. None = no boundary."""
    if method == "conq":
        return alpha / (1 - 2 * lam) if lam > 0.5 and alpha / (1 - 2 * lam) > -1 else None
    if method == "proxquant":
        return -tau * alpha / (1 - tau) if lam > alpha else None
    raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")


def attraction_boundary(method: str, lam: float, lo: float = -3.0, hi: float = 3.0, alpha: float = ALPHA,
                        tau: float = TAU, points: int = 201, rounds: int = 4, max_steps: int = 20_000) -> float | None:
    """Measured boundary between the starting points that end below 0 (binarized to −1) and those that
    end above it (+1), by repeated grid refinement of [lo, hi]; None when every point ends at +1.
    Each round iterates ``points`` starting points to their limit and zooms into the grid cell where
    the binarized limit changes, so the result is exact to (hi − lo)/(points − 1)^rounds."""
    for _ in range(rounds):
        grid = torch.linspace(lo, hi, points, dtype=torch.float64)
        positive = limit(method, grid, lam, alpha, tau, max_steps).x > 0
        if bool(positive.all()):
            return None
        if bool((~positive).all()):
            raise ValueError(f"{method} at λ={lam}: every x0 in [{lo}, {hi}] ends at −1")
        change = torch.nonzero(positive[1:] != positive[:-1]).flatten()
        if len(change) != 1 or not bool(positive[-1]):
            raise ValueError(f"{method} at λ={lam}: the attraction region of +1 is not a half-line x0 > c")
        i = int(change[0])
        lo, hi = float(grid[i]), float(grid[i + 1])
    return 0.5 * (lo + hi)
