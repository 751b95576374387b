"""Windowed (live) form == vectorised (backtest) form, bit for bit, over whole real datasets; and
convergence of recursive indicators computed from a bounded window of the last L bars.

Non-recursive indicators are checked at every bar, given just the tail they need. Recursive ones
(EMA, RSI, MACD, ADX, and the running OBV) are given the full prefix values[: t + 1], as the live
path passes its whole window, at a sample of bars that includes the first defined bar."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from tradeflow.indicators import (
    adx,
    adx_series,
    bollinger,
    bollinger_series,
    convergence_lookback,
    cross,
    cross_series,
    donchian,
    donchian_series,
    ema,
    ema_series,
    macd,
    macd_series,
    obv,
    obv_series,
    rolling_max,
    rolling_max_series,
    rolling_min,
    rolling_min_series,
    rsi,
    rsi_series,
    session_vwap,
    session_vwap_series,
    stochastic,
    stochastic_series,
    vwap,
    vwap_series,
    wma,
    wma_series,
    zones,
    zones_series,
)
from tradeflow.marketdata import load_dataset

DATASETS = ["GOOG", "SPY", "EURUSD", "ASML.AS", "BTCUSD", "002032.SZ"]
Columns = tuple[list[float], list[float], list[float], list[float]]


@functools.cache
def _hlcv(symbol: str) -> Columns:
    bars = load_dataset(symbol)
    return tuple([float(getattr(b, f)) for b in bars] for f in ("high", "low", "close", "volume"))  # type: ignore[return-value]


def _same(windowed: float | None, vectorised: float) -> bool:
    if windowed is None:
        return math.isnan(vectorised)
    return windowed == vectorised and math.copysign(1, windowed) == math.copysign(1, vectorised)


def _assert_tail_equal(
    n: int, need: int, windowed: Callable[[int, int], Sequence[float | None]], series: Sequence[np.ndarray]
) -> None:
    """At every bar t: windowed(start, t + 1) over the last `need` bars equals the series at t."""
    for t in range(n):
        got = windowed(max(0, t + 1 - need), t + 1)
        for g, s in zip(got, series, strict=True):
            assert _same(g, float(s[t])), t


def _sample(n: int, first: int, count: int = 12) -> list[int]:
    picks = {first - 1, first, first + 1, n - 1, *np.linspace(first, n - 1, count).astype(int).tolist()}
    return sorted(t for t in picks if 0 <= t < n)


@pytest.mark.parametrize("symbol", DATASETS)
def test_non_recursive_indicators_windowed_equal_vectorised(symbol: str) -> None:
    h, lo, c, v = _hlcv(symbol)
    n = len(c)

    def unpack(x: object, k: int) -> list[float | None]:
        return [None] * k if x is None else list(x)  # type: ignore[call-overload]

    _assert_tail_equal(n, 20, lambda s, e: [wma(c[s:e], 20)], [wma_series(c, 20)])
    _assert_tail_equal(
        n, 20, lambda s, e: unpack(bollinger(c[s:e], 20, 2.0, 1.5), 3), bollinger_series(c, 20, 2.0, 1.5)
    )
    _assert_tail_equal(
        n,
        16,
        lambda s, e: unpack(stochastic(h[s:e], lo[s:e], c[s:e], 10, 3, 4), 2),
        stochastic_series(h, lo, c, 10, 3, 4),
    )
    _assert_tail_equal(n, 9, lambda s, e: unpack(stochastic(h[s:e], lo[s:e], c[s:e]), 2), stochastic_series(h, lo, c))
    _assert_tail_equal(n, 20, lambda s, e: [vwap(h[s:e], lo[s:e], c[s:e], v[s:e], 20)], [vwap_series(h, lo, c, v, 20)])
    _assert_tail_equal(n, 20, lambda s, e: unpack(donchian(h[s:e], lo[s:e], 20), 3), donchian_series(h, lo, 20))
    _assert_tail_equal(
        n,
        7,
        lambda s, e: [rolling_max(c[s:e], 7), rolling_min(c[s:e], 7)],
        [rolling_max_series(c, 7), rolling_min_series(c, 7)],
    )
    fast, slow = ema_series(c, 10), ema_series(c, 30)
    crosses = cross_series(fast, slow)
    for t in range(1, n):
        expected = {"above": 1, "below": -1, "none": 0}[cross(fast[t - 1], slow[t - 1], fast[t], slow[t]).value]
        assert crosses[t] == expected


def test_session_vwap_windowed_equals_vectorised() -> None:
    h, lo, c, v = _hlcv("EURUSD")
    days = [b.ts.date() for b in load_dataset("EURUSD")]
    series = session_vwap_series(h, lo, c, v, days)
    for t in range(len(c)):
        s = max(0, t - 30)  # a session is at most 24 hourly bars: any tail covering it gives the same value
        assert _same(session_vwap(h[s : t + 1], lo[s : t + 1], c[s : t + 1], v[s : t + 1], days[s : t + 1]), series[t])


def _assert_triple(got: tuple[float, float, float] | None, series: Sequence[np.ndarray], t: int) -> None:
    """None exactly while the first series (MACD line, ADX) is in warm-up; else all three bit-equal."""
    if got is None:
        assert math.isnan(series[0][t])
    else:
        assert all(_same(g, float(s[t])) for g, s in zip(got, series, strict=True))


@pytest.mark.parametrize("symbol", DATASETS)
def test_recursive_indicators_from_full_prefix_equal_vectorised(symbol: str) -> None:
    h, lo, c, v = _hlcv(symbol)
    n = len(c)
    e20, e1 = ema_series(c, 20), ema_series(c, 1)
    r14 = rsi_series(c, 14)
    m = macd_series(c)
    a = adx_series(h, lo, c, 14)
    o = obv_series(c, v)
    for t in _sample(n, 19):
        assert _same(ema(c[: t + 1], 20), e20[t])
        assert _same(ema(c[: t + 1], 1), e1[t])
        assert _same(obv(c[: t + 1], v[: t + 1]), o[t])
    for t in _sample(n, 14):
        assert _same(rsi(c[: t + 1], 14), r14[t])
    for t in _sample(n, 33):
        _assert_triple(macd(c[: t + 1]), m, t)
    for t in _sample(n, 27):
        _assert_triple(adx(h[: t + 1], lo[: t + 1], c[: t + 1], 14), a, t)


@pytest.mark.parametrize("symbol", DATASETS)
def test_zones_windowed_equal_vectorised(symbol: str) -> None:
    h, lo, _, _ = _hlcv(symbol)
    for width, tolerance in ((2, 0.002), (5, 0.01)):
        assert zones(h, lo, width, tolerance, 1) == zones_series(np.array(h), np.array(lo), width, tolerance, 1)
        assert zones(h[-300:], lo[-300:], width, tolerance) == zones_series(h[-300:], lo[-300:], width, tolerance)


# --- convergence of bounded windows ---------------------------------------------------------------


def _close_enough(windowed: float, full: float, scale: float) -> bool:
    return abs(windowed - full) <= 1e-9 * scale


@pytest.mark.parametrize("symbol", DATASETS)
def test_bounded_windows_converge_within_documented_lookback(symbol: str) -> None:
    h, lo, c, _ = _hlcv(symbol)
    n = len(c)
    checked = 0
    for period in (10, 20, 50, 200):
        full = ema_series(c, period)
        lookback = convergence_lookback("ema", period)
        for t in _sample(n, lookback, 40)[1:]:
            got = ema(c[t + 1 - lookback : t + 1], period)
            assert got is not None and _close_enough(got, full[t], abs(full[t]))
            checked += 1
    for period in (2, 14, 30):
        full = rsi_series(c, period)
        lookback = convergence_lookback("rsi", period)
        for t in _sample(n, lookback, 40)[1:]:
            got = rsi(c[t + 1 - lookback : t + 1], period)
            assert got is not None and _close_enough(got, full[t], abs(full[t]))
    lookback = convergence_lookback("macd", 26, 9)
    line, signal, hist = macd_series(c)
    for t in _sample(n, lookback, 40)[1:]:
        got_macd = macd(c[t + 1 - lookback : t + 1])
        assert got_macd is not None
        for g, f in zip(got_macd, (line[t], signal[t], hist[t]), strict=True):
            assert _close_enough(g, f, abs(c[t]))  # MACD crosses zero: relative to the price
    for period in (7, 14):
        full_adx = adx_series(h, lo, c, period)
        lookback = convergence_lookback("adx", period)
        for t in _sample(n, lookback, 40)[1:]:
            s = t + 1 - lookback
            got_adx = adx(h[s : t + 1], lo[s : t + 1], c[s : t + 1], period)
            assert got_adx is not None
            for g, f in zip(got_adx, (x[t] for x in full_adx), strict=True):
                assert _close_enough(g, f, max(abs(f), 1e-300))
    assert checked > 0 or n < convergence_lookback("ema", 10) + 2


def test_short_windows_do_not_converge() -> None:
    """The lookback matters: a window of a few periods is visibly off the full-history value."""
    _, _, c, _ = _hlcv("SPY")
    full = ema_series(c, 50)[-1]
    short = ema(c[-100:], 50)
    assert short is not None and abs(short - full) > 1e-6 * abs(full)
    with pytest.raises(ValueError, match="valid"):
        convergence_lookback("sma", 10)  # type: ignore[arg-type]


def test_live_forms_do_not_import_numpy() -> None:
    """Design rule 9: importing the indicators (the live path) loads no numpy."""
    import subprocess
    import sys

    code = "import sys, tradeflow.indicators; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
