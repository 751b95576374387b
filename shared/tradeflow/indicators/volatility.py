"""True range and average true range (simple mean of true ranges, so any window gives the same value
as the full history would at that bar — a requirement for live/backtest parity)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def true_ranges(high: Sequence[float], low: Sequence[float], close: Sequence[float]) -> list[float]:
    """True range per bar from the second bar on (the first has no previous close)."""
    return [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, len(close))
    ]


def atr(high: Sequence[float], low: Sequence[float], close: Sequence[float], period: int) -> float | None:
    """ATR at the last bar; needs period + 1 bars."""
    if len(close) < period + 1:
        return None
    start = len(close) - period - 1
    ranges = true_ranges(high[start:], low[start:], close[start:])
    return math.fsum(ranges) / period


def atr_series(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int) -> np.ndarray:
    import numpy as np

    h, lo, c = (np.asarray(a, dtype=float) for a in (high, low, close))
    out = np.full(c.shape, np.nan)
    if c.size < period + 1:
        return out
    tr = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - c[:-1]), np.abs(lo[1:] - c[:-1])])
    windows = np.lib.stride_tricks.sliding_window_view(tr, period)
    out[period:] = [math.fsum(w) / period for w in windows]
    return out
