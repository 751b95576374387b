"""Percentiles without numpy (the bench must not distort what it measures)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def describe(values: Sequence[float]) -> str:
    return f"p50 {percentile(values, 50):7.1f} ms  p99 {percentile(values, 99):7.1f} ms  (n={len(values)})"
