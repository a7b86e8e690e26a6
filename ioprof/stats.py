"""Small, documented statistics for repeatable figures: spread, bimodality, trend, bootstrap CI.

Each rule is simple enough to state in a report and check by hand. Thresholds are named here
and documented in docs/kpi.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A relative spread (IQR / median) above this makes a set of runs "noisy".
SPREAD_LIMIT = 0.10
# Bimodal: the largest gap between sorted values splits them into two groups of >= 2 runs,
# and that gap is at least this many times the larger within-group range (and >= 5% of median).
BIMODAL_GAP_RATIO = 2.0
BIMODAL_MIN_GAP = 0.05
# Trend: |Spearman rank correlation| of value vs run order at least this, with >= 4 runs.
TREND_RHO = 0.8
TREND_MIN_RUNS = 4
# Runs needed: enough for a 95% confidence half-width of this fraction of the mean.
TARGET_HALF_WIDTH = 0.02
BOOTSTRAP_ITERATIONS = 2000


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 (inclusive method: defined for two or more values)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


@dataclass(frozen=True)
class Spread:
    n: int
    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    relative_iqr: float  # (q3 - q1) / median
    cv: float  # stdev / mean

    def to_json(self) -> dict[str, float | int]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    q1, med, q3 = quartiles(values)
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(n=len(values), median=med, minimum=min(values), maximum=max(values), q1=q1,
                  q3=q3, relative_iqr=(q3 - q1) / med if med else math.inf,
                  cv=stdev / mean if mean else math.inf)


def bimodal(values: Sequence[float]) -> tuple[list[float], list[float]] | None:
    """The two groups if the values fall into two clearly separated groups, else None."""
    ordered = sorted(values)
    if len(ordered) < 4:
        return None
    gaps = [(ordered[i + 1] - ordered[i], i) for i in range(len(ordered) - 1)]
    gap, at = max(gaps)
    low, high = ordered[: at + 1], ordered[at + 1:]
    if len(low) < 2 or len(high) < 2:
        return None
    within = max(low[-1] - low[0], high[-1] - high[0])
    median = statistics.median(ordered)
    if gap >= BIMODAL_GAP_RATIO * within and gap >= BIMODAL_MIN_GAP * median:
        return low, high
    return None


def spearman(values: Sequence[float]) -> float | None:
    """Rank correlation of the values with their order (1 = steadily rising)."""
    n = len(values)
    if n < 3:
        return None
    ranks = _ranks(values)
    order = list(range(1, n + 1))
    mean_r, mean_o = statistics.fmean(ranks), statistics.fmean(order)
    cov = sum((r - mean_r) * (o - mean_o) for r, o in zip(ranks, order, strict=True))
    var_r = sum((r - mean_r) ** 2 for r in ranks)
    var_o = sum((o - mean_o) ** 2 for o in order)
    if var_r == 0:
        return 0.0
    return cov / math.sqrt(var_r * var_o)


def _ranks(values: Sequence[float]) -> list[float]:
    indexed = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(indexed):
        j = i
        while j + 1 < len(indexed) and values[indexed[j + 1]] == values[indexed[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[indexed[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def runs_needed(values: Sequence[float], half_width: float = TARGET_HALF_WIDTH) -> int | None:
    """Runs for a 95% CI of the mean within ±half_width (normal approximation)."""
    if len(values) < 2:
        return None
    s = spread(values)
    return max(2, math.ceil((1.96 * s.cv / half_width) ** 2))


def bootstrap_ratio_ci(
    a: Sequence[float], b: Sequence[float], statistic: str = "median",
    iterations: int = BOOTSTRAP_ITERATIONS, seed: int = 0, confidence: float = 0.95,
) -> tuple[float, float, float]:
    """statistic(a)/statistic(b) and its percentile bootstrap interval, resampling each side
    independently (statistic: "median" or "mean").

    A fixed seed makes the interval reproducible: the same inputs always give the same text.
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both sides need values")
    reduce: Callable[..., np.ndarray] = np.median if statistic == "median" else np.mean
    rng = np.random.default_rng(seed)
    arr_a, arr_b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    point = float(reduce(arr_a) / reduce(arr_b))
    ratios = []
    chunk = max(1, min(iterations, 2_000_000 // max(len(arr_a), len(arr_b), 1)))
    done = 0
    while done < iterations:
        size = min(chunk, iterations - done)
        ra = reduce(arr_a[rng.integers(0, len(arr_a), size=(size, len(arr_a)))], axis=1)
        rb = reduce(arr_b[rng.integers(0, len(arr_b), size=(size, len(arr_b)))], axis=1)
        keep = rb != 0
        ratios.append(ra[keep] / rb[keep])
        done += size
    all_ratios = np.concatenate(ratios)
    tail = (1 - confidence) / 2
    low, high = np.quantile(all_ratios, [tail, 1 - tail])
    return point, float(low), float(high)
