"""Mean ± std (n) over runs: the one aggregation and its printed form, shared by the paper tables
(src.reporting.tables, scripts/make_tables.py) and the comparison of one's own runs
(src.reporting.compare, scripts/compare.py).

mean = (1/n) Σ_i x_i and the sample standard deviation s = √(Σ_i (x_i − mean)² / (n − 1)); with one
run there is no spread to estimate, so s is None and printed as nothing (never as 0).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Stats:
    mean: float
    std: float | None          # sample standard deviation (None for one run)
    n: int


def summarize(values: Iterable[float | None]) -> Stats | None:
    """Mean, sample std and count of the finite values (None and NaN/inf are not values); None if none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None
    return Stats(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


def format_stats(stats: Stats, decimals: int = 2) -> str:
    """``91.23 ± 0.45 (n=3)``; ``91.23 (n=1)`` for one run. The mean with ``decimals``, the std with 2."""
    std = f" ± {stats.std:.2f}" if stats.std is not None else ""
    return f"{stats.mean:.{decimals}f}{std} (n={stats.n})"
