"""Rolling highs and lows and the Donchian channel (TA-Lib MAX/MIN: windows include the current bar)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tradeflow.indicators._kernels import check_period

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Channel(NamedTuple):
    upper: float
    middle: float
    lower: float


def rolling_max(values: Sequence[float], period: int) -> float | None:
    """Highest of the last `period` values (including the last); None while fewer exist."""
    check_period(period)
    return max(values[len(values) - period :]) if len(values) >= period else None


def rolling_min(values: Sequence[float], period: int) -> float | None:
    """Lowest of the last `period` values (including the last); None while fewer exist."""
    check_period(period)
    return min(values[len(values) - period :]) if len(values) >= period else None


def _rolling(values: npt.ArrayLike, period: int, highest: bool) -> np.ndarray:
    import numpy as np

    check_period(period)
    data = np.asarray(values, dtype=float)
    out = np.full(data.shape, np.nan)
    if data.size >= period:
        windows = np.lib.stride_tricks.sliding_window_view(data, period)
        out[period - 1 :] = windows.max(axis=1) if highest else windows.min(axis=1)
    return out


def rolling_max_series(values: npt.ArrayLike, period: int) -> np.ndarray:
    """Rolling highest value of every position (NaN during the warm-up of period - 1 values)."""
    return _rolling(values, period, highest=True)


def rolling_min_series(values: npt.ArrayLike, period: int) -> np.ndarray:
    """Rolling lowest value of every position (NaN during the warm-up of period - 1 values)."""
    return _rolling(values, period, highest=False)


def donchian(high: Sequence[float], low: Sequence[float], period: int = 20) -> Channel | None:
    """Donchian channel at the last bar: upper = highest high and lower = lowest low of the last
    `period` bars (the current one included; for a breakout test compare the close with the previous
    bar's channel), middle = (upper + lower) / 2. None while fewer than `period` bars exist."""
    upper, lower = rolling_max(high, period), rolling_min(low, period)
    if upper is None or lower is None:
        return None
    return Channel(upper, (upper + lower) / 2, lower)


def donchian_series(
    high: npt.ArrayLike, low: npt.ArrayLike, period: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower) arrays, NaN during warm-up."""
    upper, lower = rolling_max_series(high, period), rolling_min_series(low, period)
    return upper, (upper + lower) / 2, lower
