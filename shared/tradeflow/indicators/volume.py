"""Volume indicators: on-balance volume (OBV) and volume-weighted average price (VWAP), rolling over a
window or anchored at session starts."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from tradeflow.indicators._kernels import NAN, as_array, as_list, check_period, last_or_none

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


# --- OBV ------------------------------------------------------------------------------------------


def obv_values(close: Sequence[float], volume: Sequence[float]) -> list[float]:
    """OBV of every bar, as TA-Lib: obv[0] = volume[0]; then + volume when the close rises, - volume
    when it falls, unchanged when equal. A running sum anchored at the first bar given: its level
    depends on where the data starts (a bounded window shifts it by a constant), so compare OBV with
    itself (slopes, its own averages), or pass the same history in live and backtest."""
    out: list[float] = []
    total = 0.0
    for t, (c, v) in enumerate(zip(close, volume, strict=True)):
        if t == 0:
            total = v
        elif c > close[t - 1]:
            total += v
        elif c < close[t - 1]:
            total -= v
        out.append(total)
    return out


def obv(close: Sequence[float], volume: Sequence[float]) -> float | None:
    """OBV at the last bar (see `obv_values`); None for no bars."""
    return last_or_none(obv_values(close, volume))


def obv_series(close: npt.ArrayLike, volume: npt.ArrayLike) -> np.ndarray:
    """OBV of every bar (no warm-up)."""
    return as_array(obv_values(as_list(close), as_list(volume)))


# --- VWAP -----------------------------------------------------------------------------------------


def _price_volume(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], volume: Sequence[float]
) -> list[float]:
    return [(h + lo + c) / 3.0 * v for h, lo, c, v in zip(high, low, close, volume, strict=True)]


def _vwap(pv: Sequence[float], volume: Sequence[float]) -> float:
    total = math.fsum(volume)
    return math.fsum(pv) / total if total != 0 else NAN


def vwap(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], volume: Sequence[float], period: int
) -> float | None:
    """Rolling VWAP at the last bar: sum(typical * volume) / sum(volume) over the last `period` bars,
    typical = (high + low + close) / 3, sums exactly rounded. None while fewer than `period` bars exist
    or when their volume is 0."""
    check_period(period)
    n = len(close)
    if n < period:
        return None
    s = n - period
    value = _vwap(_price_volume(high[s:], low[s:], close[s:], volume[s:]), volume[s:])
    return None if math.isnan(value) else value


def vwap_series(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, volume: npt.ArrayLike, period: int
) -> np.ndarray:
    """Rolling VWAP of every bar (NaN during warm-up and where the window's volume is 0)."""
    check_period(period)
    v = as_list(volume)
    pv = _price_volume(as_list(high), as_list(low), as_list(close), v)
    out = [NAN] * len(v)
    for t in range(period - 1, len(v)):
        out[t] = _vwap(pv[t - period + 1 : t + 1], v[t - period + 1 : t + 1])
    return as_array(out)


def session_vwap(
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    volume: Sequence[float],
    sessions: Sequence[Hashable],
) -> float | None:
    """Session-anchored VWAP at the last bar: as `vwap`, over the bars since the start of the last
    bar's session. `sessions` labels each bar (e.g. its trading date); a session is a run of equal
    consecutive labels. None for no bars or when the session's volume so far is 0."""
    n = len(close)
    if n == 0:
        return None
    s = n - 1
    while s > 0 and sessions[s - 1] == sessions[n - 1]:
        s -= 1
    value = _vwap(_price_volume(high[s:], low[s:], close[s:], volume[s:]), volume[s:])
    return None if math.isnan(value) else value


def session_vwap_series(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    sessions: Sequence[Hashable],
) -> np.ndarray:
    """Session-anchored VWAP of every bar (NaN where the session's volume so far is 0)."""
    v = as_list(volume)
    pv = _price_volume(as_list(high), as_list(low), as_list(close), v)
    if len(sessions) != len(v):
        raise ValueError("sessions must label every bar")
    out = [NAN] * len(v)
    start = 0
    for t in range(len(v)):
        if t > 0 and sessions[t] != sessions[t - 1]:
            start = t
        out[t] = _vwap(pv[start : t + 1], v[start : t + 1])
    return as_array(out)
