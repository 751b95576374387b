"""Bollinger Bands: SMA middle band, bands at a multiple of the population standard deviation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tradeflow.indicators._kernels import NAN, as_array, as_list, check_period

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Bands(NamedTuple):
    middle: float
    upper: float
    lower: float


def _bands(window: Sequence[float], dev_up: float, dev_down: float) -> Bands:
    n = len(window)
    mean = math.fsum(window) / n
    std = math.sqrt(math.fsum([(x - mean) * (x - mean) for x in window]) / n)
    return Bands(mean, mean + dev_up * std, mean - dev_down * std)


def bollinger(values: Sequence[float], period: int = 20, dev_up: float = 2.0, dev_down: float = 2.0) -> Bands | None:
    """Bollinger Bands at the last value (TA-Lib BBANDS with an SMA): middle = mean of the last
    `period` values; std = population standard deviation (divisor `period`), computed two-pass with
    exactly rounded sums, sqrt(fsum((x - mean)^2) / period); upper = middle + dev_up * std, lower =
    middle - dev_down * std. None while fewer than `period` values exist (lookback period - 1)."""
    check_period(period)
    if len(values) < period:
        return None
    return _bands(values[len(values) - period :], dev_up, dev_down)


def bollinger_series(
    values: npt.ArrayLike, period: int = 20, dev_up: float = 2.0, dev_down: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(middle, upper, lower) arrays, NaN during warm-up, bit for bit equal to `bollinger`."""
    check_period(period)
    data = as_list(values)
    n = len(data)
    mid, up, low = [NAN] * n, [NAN] * n, [NAN] * n
    for t in range(period - 1, n):
        mid[t], up[t], low[t] = _bands(data[t - period + 1 : t + 1], dev_up, dev_down)
    return as_array(mid), as_array(up), as_array(low)
