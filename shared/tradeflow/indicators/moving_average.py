"""Simple moving average."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def sma(values: Sequence[float], period: int, end: int | None = None) -> float | None:
    """Mean of the `period` values ending at index `end` (exclusive; default: the last value).
    None while fewer than `period` values exist. `math.fsum` keeps it exactly rounded."""
    if period < 1:
        raise ValueError("period must be at least 1")
    stop = len(values) if end is None else end
    if stop < period:
        return None
    return math.fsum(values[stop - period : stop]) / period


def sma_series(values: npt.ArrayLike, period: int) -> np.ndarray:
    """SMA of every position (NaN during warm-up), computed with the same exactly-rounded sum as
    `sma` so the vectorised and windowed forms agree bit for bit."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if period < 1:
        raise ValueError("period must be at least 1")
    out = np.full(data.shape, np.nan)
    if data.size >= period:
        windows = np.lib.stride_tricks.sliding_window_view(data, period)
        out[period - 1 :] = [math.fsum(w) / period for w in windows]
    return out
