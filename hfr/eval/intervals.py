"""Mean, spread and the 95% Student-t interval of a few repeated measurements (seeds, folds).

Benchmarks compare methods over a handful of seeds; a mean without its interval over-reads noise.
`t_interval` gives the two-sided 95% confidence interval of the mean of n values with n - 1 degrees of
freedom (no SciPy: the quantiles of Student's t are tabled below, from the standard tables; between two
tabled degrees of freedom the smaller one's quantile is used, which widens the interval slightly).
`paired` applies it to the differences of two methods measured on the same seeds (or folds), which
cancels what the seeds share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hfr.errors import ArgumentError

#: Two-sided 95% quantiles t_{0.975, df} of Student's t distribution.
T95: dict[int, float] = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}
Z95 = 1.960  #: the normal quantile, used beyond the table


def t_quantile(df: int) -> float:
    """t_{0.975, df} (the tabled value at the largest tabled df <= `df`; the normal 1.96 beyond 120)."""
    if df < 1:
        raise ArgumentError(f"an interval needs at least 1 degree of freedom (2 values); got {df}")
    if df > max(T95):
        return Z95
    return T95[max(k for k in T95 if k <= df)]


def t_interval(values: Sequence[float]) -> dict[str, Any]:
    """{"mean", "std" (sample, n - 1), "n", "low", "high"} of `values`; low/high are the 95% t interval
    of the mean, None for fewer than two values (a single seed has no interval)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "low": None, "high": None}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "std": None, "n": 1, "low": None, "high": None}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "low": mean - half, "high": mean + half}


def paired(method: Mapping[Any, float], reference: Mapping[Any, float]) -> dict[str, Any]:
    """`t_interval` of method[k] - reference[k] over the keys (seeds, folds) both have."""
    keys = [k for k in method if k in reference]
    return t_interval([method[k] - reference[k] for k in keys])
