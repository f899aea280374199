"""ConQ's toy example (ConQ Sec. 4.3, Fig. 2) run with the project's prox_conq/prox_proxquant: the
regions of attraction the paper states, its λ = 0.3, t = 200 claim, and the files of the script."""

from __future__ import annotations

import csv
import importlib.util
import math

import pytest
import torch

from src.quant import conq_toy as toy
from tests.conftest import ROOT

ALPHA, TAU = toy.ALPHA, toy.TAU


@pytest.mark.parametrize("method,lam", [(m, lam) for lam in toy.LAMBDAS for m in toy.METHODS])
def test_region_of_attraction_matches_the_paper(method, lam):
    measured = toy.attraction_boundary(method, lam)
    if method == "conq" and lam == 1.5:
        expected = ALPHA / (1 - 2 * lam)           # "x0 > α/(1 − 2λ)": the negative minimizer's basin ends here
    elif method == "proxquant" and lam > ALPHA:    # λ = 0.6 and 1.5: "x0 > −τα/(1 − τ)" (= −0.004)
        expected = -TAU * ALPHA / (1 - TAU)
    else:                                          # ConQ at 0.3, 0.6 and ProxQuant at 0.3: from any x0
        expected = None
    if expected is None:
        assert measured is None
    else:
        assert measured == pytest.approx(expected, abs=1e-6)
        assert toy.paper_threshold(method, lam) == pytest.approx(expected)


def test_where_each_method_converges():
    x0 = torch.linspace(-3, 3, 121, dtype=torch.float64) + 0.0123  # off the unstable fixed point −0.2 of λ = 1.5
    for lam in (0.3, 0.6):  # ConQ: the right solution (+1) from any x0
        assert torch.allclose(toy.limit("conq", x0, lam).x, torch.ones_like(x0), atol=1e-8)
    # ProxQuant, λ = 0.3: F's unique minimum α + λ; λ = 0.6: the local minimum α − λ < 0 below the threshold
    assert torch.allclose(toy.limit("proxquant", x0, 0.3).x, torch.full_like(x0, ALPHA + 0.3), atol=1e-8)
    low = x0[x0 < -TAU * ALPHA / (1 - TAU)]
    assert torch.allclose(toy.limit("proxquant", low, 0.6).x, torch.full_like(low, ALPHA - 0.6), atol=1e-8)
    # λ = 1.5: both F have their two minima at ±1
    assert set(toy.limit("conq", x0, 1.5).x.tolist()) == {-1.0, 1.0}


def test_conq_rates_linear_at_lambda_03_finite_at_06():
    traj = toy.trajectory("conq", [-0.9], 0.3, 150)[:, 0]  # stays on the inner branch |x| < 1 − 2λτ
    ratios = (traj[1:] - 1) / (traj[:-1] - 1)
    assert torch.allclose(ratios, torch.full_like(ratios, (1 - TAU) / (1 - 2 * 0.3 * TAU)), rtol=1e-9)
    steps = toy.limit("conq", [-2.0, -0.5, 0.5, 2.0], 0.6).steps
    traj = toy.trajectory("conq", [-2.0, -0.5, 0.5, 2.0], 0.6, int(steps.max()) + 1)
    assert bool((traj[-1] == 1.0).all()), "ConQ at λ = 0.6 reaches +1 exactly in a finite number of steps"


def test_stopping_at_t200_only_conq_binarizes_correctly():
    lam, t = 0.3, 200
    grid = torch.linspace(-2, 2, 4001, dtype=torch.float64)  # step 0.001
    conq = toy.trajectory("conq", grid, lam, t)[-1] > 0
    pq = toy.trajectory("proxquant", grid, lam, t)[-1] > 0
    assert bool(conq[grid == -1.0]) and not bool(pq[grid == -1.0])  # the paper's case: only ConQ is right
    assert bool((conq | ~pq).all()), "ConQ is right wherever ProxQuant is"
    # Both limits are the right sign (+0.7 and +1): stopping at t = 200 is what separates them.
    # ProxQuant on (−1, 0): x ← (1 − τ)x + τ(α − λ) until z = x − τ(x − α) ≥ 0, i.e. x ≥ −τα/(1 − τ),
    # after which it jumps right; so x_200 > 0 iff x_199 ≥ −τα/(1 − τ):
    c, fixed = -TAU * ALPHA / (1 - TAU), ALPHA - lam
    pq_from = fixed + (c - fixed) / (1 - TAU) ** (t - 1)
    assert float(grid[~pq].max()) == pytest.approx(pq_from, abs=1e-3)
    assert float(grid[~conq].max()) < pq_from - 0.5  # ConQ's correct region reaches much further left


def test_bad_method_is_refused():
    with pytest.raises(ValueError, match="proxquant"):
        toy.step("pq", torch.zeros(1), 0.3)


@pytest.fixture(scope="module")
def script_outputs(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("conq_toy_script", ROOT / "scripts" / "conq_toy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path_factory.mktemp("conq_toy")
    assert script.main(["--figure", str(out / "conq_toy.png"), "--tables", str(out / "tables")]) == 0
    return script, out


@pytest.mark.slow
def test_script_writes_figure_and_tables(script_outputs):
    script, out = script_outputs
    png = (out / "conq_toy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    with open(out / "tables" / "toy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(toy.METHODS) * len(toy.LAMBDAS) * len(script.X0)
    row = next(r for r in rows if r["method"] == "conq" and float(r["lambda"]) == 1.5 and float(r["x0"]) == -0.21)
    assert float(row["limit"]) == -1.0 and row["correct"] == "False"
    with open(out / "tables" / "toy_thresholds.csv", newline="") as f:
        thresholds = list(csv.DictReader(f))
    assert len(thresholds) == 6 and all(r["agrees"] == "True" for r in thresholds)
    md = (out / "tables" / "toy.md").read_text()
    assert md.count("| yes |") == 6 and "| ConQ | 1.5 | x0 > α/(1 − 2λ) | −0.2000000 | −0.2000000 | yes |" in md
    assert "only ConQ" in md and not math.isnan(float(row["x_200"]))
