"""scripts/plot_quantizers.py: prox-based methods drawn with the map their update rule applies, a
y-range per panel in which one runaway peak does not flatten the other curves, distinct titles."""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import ROOT
from src.core import config_tree
from src.engine.build import method_pair
from src.quant.prox import linear_quantizer, prox_conq, sign

sys.path.insert(0, str(ROOT / "scripts"))
import plot_quantizers as pq_plot  # noqa: E402

U = torch.linspace(-2, 2, 401, dtype=torch.float64)


def test_the_update_rules_map_is_drawn_for_pq_and_rpc_and_sign_once_frozen():
    assert torch.equal(pq_plot.after_a_still_step("pq", U, 0.0), linear_quantizer(U, 0.01).clamp(-1, 1))  # PQ clips
    assert torch.equal(pq_plot.after_a_still_step("rpc", U, 1.0), linear_quantizer(U, 10.0))                # rPC does not
    assert torch.equal(pq_plot.after_a_still_step("proxquant", U, 1.0), sign(U))       # p ≥ freeze_at: sign(u)
    rule = pq_plot.update_rule("conq", U.clone())
    assert torch.equal(pq_plot.prox_curve(rule, U, 0.25), prox_conq(U, 0.25))          # ConQ does not clip
    acting = [n for n in config_tree.methods() if pq_plot.acts_on_weights(pq_plot.update_rule(n, U.clone()))]
    assert acting == ["conq", "pq", "proxgen", "proxquant", "rpc"]


def test_a_runaway_peak_runs_off_a_top_fitted_to_the_other_curves():
    q = method_pair("polyp")
    curves = []
    for p in pq_plot.PROGRESS:
        q.set_progress(p)
        curves.append(q.backward_map(U))
    bottom, top, off = pq_plot.y_range(curves)
    assert off == [2]                                                   # p = 1 (peak 200) runs off
    assert top == pytest.approx(float(curves[1].max()) * 1.08, rel=0.01) and bottom < 0
    q = method_pair("bnnpp")                                            # peaks 5, 17.5, 30: all in range
    curves = []
    for p in pq_plot.PROGRESS:
        q.set_progress(p)
        curves.append(q.backward_map(U))
    assert pq_plot.y_range(curves)[2] == [] and pq_plot.y_range(curves)[1] > 30
    assert pq_plot.y_range([torch.ones(3)])[:2] == pytest.approx((-0.08, 1.08))   # a flat B = 1 keeps 0 in view


def test_every_method_gets_a_distinct_title():
    labels = pq_plot.labels(list(config_tree.methods()))
    assert len(set(labels.values())) == len(labels)
    assert labels["bireal"] == "Bi-Real (bireal)" and labels["proxquant"] == "ProxQuant" and labels["bnnpp"] == "BNN++"


@pytest.mark.slow
def test_the_figure_is_written(tmp_path):
    out = pq_plot.plot(tmp_path / "q.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and not list(tmp_path.glob("*.tmp.png"))
