"""Mean ± sample std (n): the one aggregation of the paper tables and of compare."""

from __future__ import annotations

import math
import statistics

from src.reporting.stats import Stats, format_stats, summarize


def test_mean_sample_std_and_n_of_the_finite_values():
    s = summarize([90.0, None, 91.0, float("nan"), 93.5, math.inf])
    assert s == Stats(statistics.fmean([90.0, 91.0, 93.5]), statistics.stdev([90.0, 91.0, 93.5]), 3)
    assert s.std == ((1.5 ** 2 + 0.5 ** 2 + 2.0 ** 2) / 2) ** 0.5       # n − 1 in the denominator


def test_one_run_has_no_std_and_none_has_no_stats():
    assert summarize([72.5]) == Stats(72.5, None, 1)
    assert summarize([None, float("nan")]) is None and summarize([]) is None


def test_printed_form():
    assert format_stats(Stats(91.2345, 0.456, 3)) == "91.23 ± 0.46 (n=3)"
    assert format_stats(Stats(91.2345, None, 1), decimals=1) == "91.2 (n=1)"
