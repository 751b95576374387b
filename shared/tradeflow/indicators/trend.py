"""Directional movement: ADX with +DI and -DI (Wilder), following TA-Lib's ADX/PLUS_DI/MINUS_DI."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tradeflow.indicators._kernels import NAN, as_array, as_list, check_period

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Adx(NamedTuple):
    adx: float
    plus_di: float
    minus_di: float


def adx_values(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], period: int = 14
) -> tuple[list[float], list[float], list[float]]:
    """ADX, +DI and -DI of every bar: the kernel behind `adx`/`adx_series`, step for step TA-Lib's.

    For each bar t >= 1: up = high[t] - high[t-1], down = low[t-1] - low[t]; +DM = up when up > down and
    up > 0, -DM = down when down > up and down > 0 (else 0); TR = true range. +DM, -DM and TR are
    summed over bars 1..period-1, then Wilder-smoothed, s = s - s / period + value, from bar `period`
    on. +DI = 100 * +DM / TR and -DI = 100 * -DM / TR (0 when TR is 0), defined from bar `period`.
    DX = 100 * |+DI - -DI| / (+DI + -DI); ADX at bar 2 * period - 1 is the mean of the first `period`
    DX values (`fsum`), then ADX = (ADX * (period - 1) + DX) / period; a bar whose TR or DI sum is 0
    leaves ADX unchanged (TA-Lib). NaN before those bars (TA-Lib's lookbacks)."""
    check_period(period, 2)
    n = len(close)
    adx_out, plus_out, minus_out = [NAN] * n, [NAN] * n, [NAN] * n
    if n <= period:
        return adx_out, plus_out, minus_out
    plus_dm = minus_dm = tr = 0.0
    dx_seed: list[float] = []
    adx_value = NAN
    for t in range(1, n):
        up = high[t] - high[t - 1]
        down = low[t - 1] - low[t]
        p = up if up > 0 and up > down else 0.0
        m = down if down > 0 and down > up else 0.0
        prev_close = close[t - 1]
        r = max(high[t] - low[t], abs(high[t] - prev_close), abs(low[t] - prev_close))
        if t < period:
            plus_dm += p
            minus_dm += m
            tr += r
            continue
        plus_dm = plus_dm - plus_dm / period + p
        minus_dm = minus_dm - minus_dm / period + m
        tr = tr - tr / period + r
        if tr == 0:
            plus_out[t] = minus_out[t] = 0.0
            dx = None
        else:
            plus_di = 100.0 * (plus_dm / tr)
            minus_di = 100.0 * (minus_dm / tr)
            plus_out[t], minus_out[t] = plus_di, minus_di
            total = plus_di + minus_di
            dx = None if total == 0 else 100.0 * (abs(minus_di - plus_di) / total)
        if t < 2 * period - 1:
            dx_seed.append(0.0 if dx is None else dx)
        elif t == 2 * period - 1:
            dx_seed.append(0.0 if dx is None else dx)
            adx_value = math.fsum(dx_seed) / period
            adx_out[t] = adx_value
        else:
            if dx is not None:
                adx_value = (adx_value * (period - 1) + dx) / period
            adx_out[t] = adx_value
    return adx_out, plus_out, minus_out


def adx(high: Sequence[float], low: Sequence[float], close: Sequence[float], period: int = 14) -> Adx | None:
    """(ADX, +DI, -DI) at the last bar (see `adx_values`); None until ADX is defined (2 * period - 1
    earlier bars). Recursive: pass the whole history (see `convergence_lookback` for bounded windows)."""
    a, p, m = adx_values(high, low, close, period)
    if not a or math.isnan(a[-1]):
        return None
    return Adx(a[-1], p[-1], m[-1])


def adx_series(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ADX, +DI, -DI) arrays: ADX NaN before index 2 * period - 1, the DIs before index `period`."""
    a, p, m = adx_values(as_list(high), as_list(low), as_list(close), period)
    return as_array(a), as_array(p), as_array(m)
