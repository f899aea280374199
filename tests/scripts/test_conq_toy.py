"""scripts/conq_toy.py's figure: each boundary line of the basin of +1 is labelled with its method and
value, the two labels on opposite sides of their lines."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from conftest import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import conq_toy  # noqa: E402

COLORS = {"conq": "k", "proxquant": "C3"}


def test_both_boundaries_labelled_on_opposite_sides():
    fig, ax = plt.subplots()
    conq_toy._label_boundaries(ax, {"conq": -0.2, "proxquant": -0.00404}, COLORS)
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [-0.2, -0.00404]
    texts = {t.get_text().strip(): t.get_horizontalalignment() for t in ax.texts}
    assert texts == {"ConQ: x0 > −0.200": "right", "ProxQuant: x0 > −0.004": "left"}
    plt.close(fig)


def test_a_method_without_boundary_gets_no_line():
    fig, ax = plt.subplots()
    conq_toy._label_boundaries(ax, {"conq": None, "proxquant": -0.00404}, COLORS)
    assert [t.get_text().strip() for t in ax.texts] == ["ProxQuant: x0 > −0.004"] and len(ax.lines) == 1
    plt.close(fig)
