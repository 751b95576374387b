"""Momentum oscillators: RSI (Wilder), MACD and the Stochastic oscillator (TA-Lib semantics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tradeflow.indicators._kernels import NAN, as_array, as_list, check_period
from tradeflow.indicators.moving_average import ema_values

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


# --- RSI ------------------------------------------------------------------------------------------


def rsi_values(values: Sequence[float], period: int = 14) -> list[float]:
    """Wilder's RSI of every position (NaN during the warm-up of `period` values): the kernel behind
    `rsi` and `rsi_series`, following TA-Lib's RSI step by step.

    Changes d[t] = x[t] - x[t-1]; the first average gain/loss (at index `period`) is the mean of the
    first `period` gains/losses (`fsum`); then avg = (avg * (period - 1) + gain) / period (Wilder
    smoothing, alpha = 1 / period). RSI = 100 * avg_gain / (avg_gain + avg_loss), and 0 when both
    averages are 0 (a flat series), as TA-Lib."""
    check_period(period, 2)
    n = len(values)
    out = [NAN] * n
    if n <= period:
        return out
    diffs = [values[i] - values[i - 1] for i in range(1, period + 1)]
    gain = math.fsum(d for d in diffs if d > 0) / period
    loss = math.fsum(-d for d in diffs if d < 0) / period
    out[period] = _rsi(gain, loss)
    for t in range(period + 1, n):
        d = values[t] - values[t - 1]
        gain *= period - 1
        loss *= period - 1
        if d < 0:
            loss -= d
        else:
            gain += d
        gain /= period
        loss /= period
        out[t] = _rsi(gain, loss)
    return out


def _rsi(gain: float, loss: float) -> float:
    total = gain + loss
    return 100.0 * (gain / total) if total != 0 else 0.0


def rsi(values: Sequence[float], period: int = 14) -> float | None:
    """RSI at the last value (see `rsi_values`); None during warm-up. Recursive: pass the whole history
    for values equal to `rsi_series` (see `convergence_lookback` for bounded windows)."""
    out = rsi_values(values, period)
    return None if not out or math.isnan(out[-1]) else out[-1]


def rsi_series(values: npt.ArrayLike, period: int = 14) -> np.ndarray:
    """RSI of every position (NaN for the first `period` values, TA-Lib's RSI lookback)."""
    return as_array(rsi_values(as_list(values), period))


# --- MACD -----------------------------------------------------------------------------------------


class Macd(NamedTuple):
    macd: float
    signal: float
    histogram: float


def macd_values(
    values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[list[float], list[float], list[float]]:
    """MACD line, signal line and histogram of every position: the kernel behind `macd`/`macd_series`.

    As TA-Lib's MACD: both EMAs start at index slow - 1, each seeded with the SMA of its own period
    ending there (so the fast EMA's seed is the mean of values[slow - fast : slow]); line = fast EMA -
    slow EMA; signal = EMA(signal) of the line, seeded with the SMA of its first `signal` values;
    histogram = line - signal. All three are NaN before index slow + signal - 2 (TA-Lib's lookback)."""
    check_period(fast, 1, "fast")
    check_period(signal, 1, "signal")
    if slow <= fast:
        raise ValueError("slow must be greater than fast")
    n = len(values)
    nan_out = [NAN] * n
    start = slow - 1
    if n < slow + signal - 1:
        return nan_out, list(nan_out), list(nan_out)
    fast_ema = ema_values(values[slow - fast :], fast)[fast - 1 :]
    slow_ema = ema_values(values, slow)[start:]
    line = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)]
    sig = ema_values(line, signal)
    first = signal - 1
    pad = [NAN] * (start + first)
    macd_out = pad + line[first:]
    signal_out = pad + sig[first:]
    hist_out = pad + [m - s for m, s in zip(line[first:], sig[first:], strict=True)]
    return macd_out, signal_out, hist_out


def macd(values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9) -> Macd | None:
    """MACD (line, signal, histogram) at the last value (see `macd_values`); None during warm-up.
    Recursive: pass the whole history (see `convergence_lookback` for bounded windows)."""
    line, sig, hist = macd_values(values, fast, slow, signal)
    if not line or math.isnan(line[-1]):
        return None
    return Macd(line[-1], sig[-1], hist[-1])


def macd_series(
    values: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, signal, histogram) arrays; NaN before index slow + signal - 2."""
    line, sig, hist = macd_values(as_list(values), fast, slow, signal)
    return as_array(line), as_array(sig), as_array(hist)


# --- Stochastic -----------------------------------------------------------------------------------


class Stoch(NamedTuple):
    k: float
    d: float


def _fast_k(high: Sequence[float], low: Sequence[float], close: float) -> float:
    highest, lowest = max(high), min(low)
    diff = (highest - lowest) / 100.0
    return (close - lowest) / diff if diff != 0 else 0.0


def _means(values: Sequence[float], period: int) -> list[float]:
    return [math.fsum(values[i - period + 1 : i + 1]) / period for i in range(period - 1, len(values))]


def _stoch_tail(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], fastk: int, slowk: int, first: int
) -> tuple[list[float], list[float]]:
    """Slow %K and %D for bars first.. (first >= fastk + slowk - 2 relative to the given bars' start)."""
    fk = [_fast_k(high[t - fastk + 1 : t + 1], low[t - fastk + 1 : t + 1], close[t]) for t in range(first, len(close))]
    return fk, _means(fk, slowk)


def stochastic(
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowd_period: int = 3,
) -> Stoch | None:
    """Slow stochastic (%K, %D) at the last bar, TA-Lib STOCH with SMA slowing: fast %K = 100 *
    (close - lowest low) / (highest high - lowest low) over `fastk_period` bars (0 when the range is 0);
    %K = SMA(slowk_period) of fast %K; %D = SMA(slowd_period) of %K (sums exactly rounded). None before
    fastk + slowk + slowd - 3 earlier bars exist (TA-Lib's lookback)."""
    k, d = stochastic_values(high, low, close, fastk_period, slowk_period, slowd_period, last_only=True)
    if not k or math.isnan(k[-1]):
        return None
    return Stoch(k[-1], d[-1])


def stochastic_values(
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowd_period: int = 3,
    last_only: bool = False,
) -> tuple[list[float], list[float]]:
    """Slow %K and %D of every bar (NaN during warm-up), or only enough of the tail for the last bar."""
    check_period(fastk_period, 1, "fastk_period")
    check_period(slowk_period, 1, "slowk_period")
    check_period(slowd_period, 1, "slowd_period")
    n = len(close)
    lookback = fastk_period + slowk_period + slowd_period - 3
    k_out, d_out = [NAN] * n, [NAN] * n
    if n <= lookback:
        return k_out, d_out
    first = n - 1 - (slowk_period + slowd_period - 2) if last_only else fastk_period - 1
    _, slow_k = _stoch_tail(high, low, close, fastk_period, slowk_period, first)
    slow_d = _means(slow_k, slowd_period)
    k_first = first + slowk_period - 1  # bar index of slow_k[0]
    for j, value in enumerate(slow_d):
        t = k_first + slowd_period - 1 + j
        if t >= lookback:
            k_out[t] = slow_k[j + slowd_period - 1]
            d_out[t] = value
    return k_out, d_out


def stochastic_series(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowd_period: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """(%K, %D) arrays, NaN before index fastk + slowk + slowd - 3, bit for bit equal to `stochastic`."""
    k, d = stochastic_values(as_list(high), as_list(low), as_list(close), fastk_period, slowk_period, slowd_period)
    return as_array(k), as_array(d)
