"""Moving averages: simple (SMA), exponential (EMA) and linearly weighted (WMA)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tradeflow.indicators._kernels import NAN, as_array, as_list, check_period, last_or_none

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


# --- EMA ------------------------------------------------------------------------------------------


def ema_values(values: Sequence[float], period: int) -> list[float]:
    """EMA of every position of `values` (NaN during warm-up): the kernel behind `ema` and `ema_series`.

    TA-Lib definition: k = 2 / (period + 1); the first value, at index period - 1, is the SMA of the
    first `period` values (`math.fsum`); then ema[t] = (x[t] - ema[t-1]) * k + ema[t-1]."""
    check_period(period)
    n = len(values)
    out = [NAN] * n
    if n < period:
        return out
    k = 2.0 / (period + 1)
    prev = math.fsum(values[:period]) / period
    out[period - 1] = prev
    for t in range(period, n):
        prev = (values[t] - prev) * k + prev
        out[t] = prev
    return out


def ema(values: Sequence[float], period: int) -> float | None:
    """EMA at the last value, seeded at the first value given (see `ema_values`); None during the
    warm-up of period - 1 values. Recursive: pass the whole history seen so far for values equal to
    `ema_series`; from only the last L values it agrees to 1e-9 relative once L >= EMA_CONVERGENCE
    (see `convergence_lookback`)."""
    return last_or_none(ema_values(values, period))


def ema_series(values: npt.ArrayLike, period: int) -> np.ndarray:
    """EMA of every position (NaN during the warm-up of period - 1 values, as TA-Lib's EMA)."""
    return as_array(ema_values(as_list(values), period))


# --- WMA ------------------------------------------------------------------------------------------


def _wma_window(window: Sequence[float], divisor: float) -> float:
    return math.fsum([(i + 1) * x for i, x in enumerate(window)]) / divisor


def wma(values: Sequence[float], period: int) -> float | None:
    """Linearly weighted moving average at the last value: weights 1..period (the newest weighs
    `period`), divided by period * (period + 1) / 2; the weighted sum is exactly rounded (`fsum`).
    None while fewer than `period` values exist (TA-Lib's WMA lookback: period - 1)."""
    check_period(period)
    if len(values) < period:
        return None
    return _wma_window(values[len(values) - period :], period * (period + 1) / 2)


def wma_series(values: npt.ArrayLike, period: int) -> np.ndarray:
    """WMA of every position (NaN during warm-up), bit for bit equal to `wma`."""
    check_period(period)
    data = as_list(values)
    divisor = period * (period + 1) / 2
    out = [NAN] * len(data)
    for t in range(period - 1, len(data)):
        out[t] = _wma_window(data[t - period + 1 : t + 1], divisor)
    return as_array(out)
