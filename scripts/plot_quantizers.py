"""Draw the forward quantizer F and the backward quantizer B of every method (configs/quantizer/, the
weight pair of each config, as a function of its argument u = N(w), interpolations resolved for task=bw)
at the schedule points p = 0, 0.5, 1 (PC++ Fig. 5 style), each titled with the Corollary 1 verdict of
src.quant.theory. Writes results/figures/quantizers.png.

Methods whose forward is the identity and whose binarization is a map applied to the weights after
each optimizer step (the update rule, src.quant.updates) are drawn with that map instead of F:
PQ and rPC with L_ρ(u) at ρ(p) (PC++ eq. 10; PQ then clips to [−1, 1]), ProxQuant, ProxGen and
ConQ with their prox u ↦ prox_{s·r}(u) (clipped where the method clips), whose strength
s = η_t·λ_t is set by the learning rate, so it is drawn at three strengths, and sign(u) once the
weights are frozen (p ≥ freeze_at). Each panel has its own y-range; a curve that would flatten the
others (Poly+'s B at p = 1) runs off the top, its peak written in the title. One legend, above the
panels.

    .venv/bin/python scripts/plot_quantizers.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.core import config_tree  # noqa: E402
from src.engine.build import in_context, method_pair  # noqa: E402
from src.quant.theory import check_quantizer  # noqa: E402
from src.quant.updates import LatentUpdate, ProxGenUpdate, ProximalUpdate  # noqa: E402
from src.reporting.names import display  # noqa: E402

PROGRESS = (0.0, 0.5, 1.0)
STRENGTHS = (0.1, 0.25, 0.4)          # prox strengths s drawn (ConQ's prox needs s < 1/2)
METHODS_PER_ROW = 3                   # each method takes two panels: F (or the update's map) and B
OFF_SCALE = 5.0                       # a curve peaking above this many times the next one runs off the top
P_COLORS = ("C0", "C1", "C2")
S_COLORS = plt.get_cmap("Purples")(torch.linspace(0.45, 0.95, len(STRENGTHS)).tolist())
FROZEN = {"color": "k", "ls": "--", "lw": 1.0}


def update_rule(name: str, weight: torch.Tensor) -> LatentUpdate | None:
    """The update rule of ``configs/quantizer/<name>.yaml`` over one weight tensor (None: no rule)."""
    node = in_context(OmegaConf.load(config_tree.option_file("quantizer", name))).get("update_rule")
    return None if node is None else instantiate(node)([weight])


def acts_on_weights(rule: LatentUpdate | None) -> bool:
    """Whether the rule maps the weights after each step (a prox, L_ρ) beyond a clip."""
    return rule is not None and (isinstance(rule, ProximalUpdate) or type(rule).unit_map is not LatentUpdate.unit_map
                                 or type(rule).apply is not LatentUpdate.apply)


def after_a_still_step(name: str, u: torch.Tensor, p: float) -> torch.Tensor:
    """The weights u after an optimizer step that did not move them, at progress p: the rule's map alone."""
    w = u.clone()
    rule = update_rule(name, w)
    rule.set_progress(p)
    rule.before_step()
    rule.after_step(0.0)
    return w


def prox_curve(rule: ProximalUpdate, u: torch.Tensor, s: float) -> torch.Tensor:
    out = rule.prox(u, s)
    return out.clamp(-1, 1) if rule.clip else out


def labels(names: list[str]) -> dict[str, str]:
    """The papers' names; a name two configs share (Bi-Real, ReAct and their _appf variants) with the config's."""
    shown = {n: display("method", n) for n in names}
    twice = {v for v, k in Counter(shown.values()).items() if k > 1}
    return {n: f"{v} ({n})" if v in twice else v for n, v in shown.items()}


def y_range(curves: list[torch.Tensor]) -> tuple[float, float, list[int]]:
    """(bottom, top, curves that run off the top): 0 and every curve in range, unless one peaks above
    OFF_SCALE times the highest of the others, which then runs off a top fitted to those."""
    peaks = [float(c.max()) for c in curves]
    low = min(0.0, *(float(c.min()) for c in curves))
    ranked = sorted(range(len(curves)), key=peaks.__getitem__)
    top = peaks[ranked[-1]]
    off: list[int] = []
    if len(curves) > 1 and peaks[ranked[-2]] > 0 and top > OFF_SCALE * peaks[ranked[-2]]:
        top = peaks[ranked[-2]]
        off = [i for i in ranked if peaks[i] > top]
    top = max(top, 0.0)
    pad = 0.08 * max(top - low, 1.0)
    return low - pad, top + pad, off


def _panel(ax, u: torch.Tensor, curves: list[tuple[torch.Tensor, dict]], title: str) -> None:
    bottom, top, off = y_range([c for c, _ in curves])
    for curve, style in curves:
        ax.plot(u, curve, **{"lw": 1.2, **style})
    if off:
        peaks = ", ".join(f"{curves[i][1]['label']} peaks at {float(curves[i][0].max()):.3g}" for i in off)
        title += f"\n({peaks}, off scale)"
    ax.set_ylim(bottom, top)
    ax.set_title(title, fontsize=8.5)
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    ax.tick_params(labelsize=7)
    ax.set_visible(True)


def plot(out: Path) -> Path:
    u = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    names = config_tree.methods()
    label = labels(names)
    rows = -(-len(names) // METHODS_PER_ROW)
    fig, axes = plt.subplots(rows, 2 * METHODS_PER_ROW, figsize=(15, 2.55 * rows + 0.9), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, name in enumerate(names):
        ax_f, ax_b = axes[i // METHODS_PER_ROW, 2 * (i % METHODS_PER_ROW): 2 * (i % METHODS_PER_ROW) + 2]
        q = method_pair(name)
        tag = "in PC++" if check_quantizer(q, progress=PROGRESS, n=30_001).in_pc_plus_plus else "not in PC++"
        backward, forward = [], []
        for p, color in zip(PROGRESS, P_COLORS):
            q.set_progress(p)
            forward.append((q.forward_map(u), {"color": color, "label": f"p={p:g}"}))
            backward.append((q.backward_map(u), {"color": color, "label": f"p={p:g}"}))
        rule = update_rule(name, u.clone())
        if isinstance(rule, ProximalUpdate):
            forward = [(prox_curve(rule, u, s), {"color": c, "label": f"s={s:g}"}) for s, c in zip(STRENGTHS, S_COLORS)]
            if rule.freeze_at is not None:
                forward.append((after_a_still_step(name, u, 1.0), {**FROZEN, "label": "frozen"}))
            title = f"{label[name]}: prox per step" + (" (s per weight)" if isinstance(rule, ProxGenUpdate) else "")
        elif acts_on_weights(rule):
            forward = [(after_a_still_step(name, u, p), {"color": c, "label": f"p={p:g}"})
                       for p, c in zip(PROGRESS, P_COLORS)]
            title = f"{label[name]}: L_ρ per step"
        elif name == "ptb":
            forward.append((torch.where(u >= 0, 1.0, -1.0).to(u), {**FROZEN, "label": "at evaluation"}))
            title = f"{label[name]}: F(u) = u; sign(u) at evaluation"
        else:
            title = f"{label[name]}: F(u)"
        _panel(ax_f, u, forward, f"{title} [{tag}]")
        _panel(ax_b, u, backward, f"{label[name]}: B(u)")
    handles = [Line2D([], [], color=c, lw=1.6, label=f"schedule point p = {p:g}") for p, c in zip(PROGRESS, P_COLORS)]
    handles += [Line2D([], [], color=c, lw=1.6, label=f"prox strength s = {s:g}") for s, c in zip(STRENGTHS, S_COLORS)]
    handles.append(Line2D([], [], **FROZEN, label="sign(u): frozen weights (p ≥ freeze_at) / PTB at evaluation"))
    fig.legend(handles=handles, loc="upper center", ncol=7, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.985))
    fig.suptitle("Forward (F) and backward (B) quantizers at schedule points p = t/T; prox-based methods: the map "
                 "applied to u after each optimizer step (s = η_t·λ_t)", fontsize=11, y=0.998)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))  # room for the title and the legend
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "figures" / "quantizers.png")
    print(plot(parser.parse_args().out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
