"""Indicators: hand-checked values, windowed == vectorised bit for bit on real data, and agreement
with an independent numpy reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tradeflow.indicators import Cross, atr, atr_series, cross, sma, sma_series, true_ranges
from tradeflow.marketdata import load_dataset

DATASETS = ["GOOG", "EURUSD", "SPY", "ASML.AS", "BTCUSD"]
PERIODS = [1, 2, 5, 14, 30, 200]


def _ohlc(symbol: str) -> tuple[list[float], list[float], list[float]]:
    bars = load_dataset(symbol)
    return [float(b.high) for b in bars], [float(b.low) for b in bars], [float(b.close) for b in bars]


def _reference_sma(values: np.ndarray, period: int) -> np.ndarray:
    """Rolling mean by convolution: an independent computation (plain float sums, not fsum)."""
    out = np.full(values.shape, np.nan)
    if values.size >= period:
        out[period - 1 :] = np.convolve(values, np.ones(period) / period, mode="valid")
    return out


def _reference_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    prev = close[:-1]
    tr = np.max(np.vstack([high[1:] - low[1:], np.abs(high[1:] - prev), np.abs(low[1:] - prev)]), axis=0)
    out = np.full(close.shape, np.nan)
    if close.size >= period + 1:
        out[period:] = np.convolve(tr, np.ones(period) / period, mode="valid")
    return out


def _same_bits(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


# --- SMA ------------------------------------------------------------------------------------------


def test_sma_hand_values() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert sma(values, 1) == 10.0
    assert sma(values, 2) == 7.0
    assert sma(values, 5) == 4.0
    assert sma(values, 3, end=3) == 2.0  # values[0:3]
    assert sma(values, 2, end=4) == 3.5  # values[2:4]
    assert sma(values, 6) is None
    assert sma(values, 3, end=2) is None
    assert sma([], 1) is None


def test_sma_is_exactly_rounded() -> None:
    tenths = [0.1] * 10
    assert sum(tenths) / 10 != 0.1  # naive summation drifts...
    assert sma(tenths, 10) == 0.1  # ...fsum does not
    assert sma_series(tenths, 10)[-1] == 0.1
    assert sma([1e16, 1.0, -1e16], 3) == 1.0 / 3


@pytest.mark.parametrize("period", [0, -1])
def test_sma_rejects_non_positive_periods(period: int) -> None:
    with pytest.raises(ValueError, match="period"):
        sma([1.0, 2.0], period)
    with pytest.raises(ValueError, match="period"):
        sma_series([1.0, 2.0], period)


def test_sma_series_warm_up_is_nan_and_values_follow() -> None:
    out = sma_series([1.0, 2.0, 3.0, 4.0, 10.0], 3)
    assert np.isnan(out[:2]).all()
    assert out[2:].tolist() == [2.0, 3.0, 17.0 / 3]
    assert np.isnan(sma_series([1.0, 2.0], 3)).all()
    assert sma_series([1.0, 2.0], 3).shape == (2,)


@pytest.mark.parametrize("symbol", DATASETS)
@pytest.mark.parametrize("period", PERIODS)
def test_sma_windowed_and_vectorised_agree_bit_for_bit_on_real_data(symbol: str, period: int) -> None:
    _, _, closes = _ohlc(symbol)
    series = sma_series(closes, period)
    assert series.shape == (len(closes),)
    for i in range(len(closes)):
        windowed = sma(closes, period, end=i + 1)
        assert _same_bits(series[i], math.nan if windowed is None else windowed), (symbol, period, i)
    # a trailing window of exactly `period` values gives the same as the full history (live path)
    for i in range(period - 1, len(closes), 97):
        assert sma(closes[i + 1 - period : i + 1], period) == series[i]


@pytest.mark.parametrize("symbol", DATASETS)
@pytest.mark.parametrize("period", PERIODS)
def test_sma_matches_a_numpy_convolution_reference(symbol: str, period: int) -> None:
    _, _, closes = _ohlc(symbol)
    data = np.asarray(closes)
    ours, reference = sma_series(data, period), _reference_sma(data, period)
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    assert np.isnan(ours).sum() == min(period - 1, len(closes))
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0, equal_nan=True)


# --- ATR ------------------------------------------------------------------------------------------


def test_true_range_hand_values() -> None:
    high = [10.0, 12.0, 11.0, 20.0]
    low = [8.0, 9.0, 10.5, 18.0]
    close = [9.0, 11.5, 10.8, 19.0]
    # bar 1: high-low 3; bar 2: |low - prev close| = 1.0 beats 0.5; bar 3: gap up, |high - prev close| = 9.2
    assert true_ranges(high, low, close) == pytest.approx([3.0, 1.0, 9.2], abs=1e-12)
    assert true_ranges([1.0], [1.0], [1.0]) == []
    assert atr(high, low, close, 3) == pytest.approx((3.0 + 1.0 + 9.2) / 3, abs=1e-12)
    assert atr(high, low, close, 2) == pytest.approx((1.0 + 9.2) / 2, abs=1e-12)
    assert atr(high, low, close, 4) is None  # needs period + 1 bars
    series = atr_series(high, low, close, 2)
    assert np.isnan(series[:2]).all()
    assert series[2:] == pytest.approx([2.0, 5.1], abs=1e-12)


def test_atr_series_is_all_nan_without_enough_bars() -> None:
    out = atr_series([2.0, 3.0], [1.0, 2.0], [1.5, 2.5], 2)
    assert out.shape == (2,)
    assert np.isnan(out).all()


@pytest.mark.parametrize("symbol", DATASETS)
@pytest.mark.parametrize("period", [1, 3, 14, 50])
def test_atr_windowed_and_vectorised_agree_bit_for_bit_on_real_data(symbol: str, period: int) -> None:
    high, low, close = _ohlc(symbol)
    series = atr_series(high, low, close, period)
    assert np.isnan(series).sum() == period
    for i in range(len(close)):
        # the live path only sees a trailing window of period + 1 bars
        lo = max(0, i - period)
        windowed = atr(high[lo : i + 1], low[lo : i + 1], close[lo : i + 1], period)
        assert _same_bits(series[i], math.nan if windowed is None else windowed), (symbol, period, i)
    # and a longer window gives the same value as the minimal one
    for i in range(period, len(close), 101):
        assert atr(high[: i + 1], low[: i + 1], close[: i + 1], period) == series[i]


@pytest.mark.parametrize("symbol", DATASETS)
@pytest.mark.parametrize("period", [1, 3, 14, 50])
def test_atr_matches_a_numpy_reference(symbol: str, period: int) -> None:
    high, low, close = (np.asarray(a) for a in _ohlc(symbol))
    ours, reference = atr_series(high, low, close, period), _reference_atr(high, low, close, period)
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=0, equal_nan=True)
    assert (ours[period:] >= 0).all()
    assert (ours[period:] > 0).any()


# --- cross ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prev_a", "prev_b", "a", "b", "expected"),
    [
        (1.0, 2.0, 3.0, 2.5, Cross.ABOVE),  # below -> above
        (2.0, 2.0, 3.0, 2.5, Cross.ABOVE),  # touching -> above
        (3.0, 2.0, 1.0, 2.5, Cross.BELOW),  # above -> below
        (2.0, 2.0, 1.0, 2.5, Cross.BELOW),  # touching -> below
        (1.0, 2.0, 1.5, 2.5, Cross.NONE),  # stays below
        (3.0, 2.0, 3.5, 2.5, Cross.NONE),  # stays above
        (1.0, 2.0, 2.0, 2.0, Cross.NONE),  # reaches but does not pass
        (3.0, 2.0, 2.0, 2.0, Cross.NONE),
        (2.0, 2.0, 2.0, 2.0, Cross.NONE),  # equal throughout
    ],
)
def test_cross(prev_a: float, prev_b: float, a: float, b: float, expected: Cross) -> None:
    assert cross(prev_a, prev_b, a, b) is expected


def test_crosses_alternate_on_real_data() -> None:
    """On GOOG the averages never merely touch, so crosses strictly alternate, and there are many."""
    _, _, closes = _ohlc("GOOG")
    fast, slow = sma_series(closes, 10), sma_series(closes, 30)
    crosses = [cross(fast[i - 1], slow[i - 1], fast[i], slow[i]) for i in range(30, len(closes))]
    events = [c for c in crosses if c is not Cross.NONE]
    assert events.count(Cross.ABOVE) > 10
    assert events.count(Cross.BELOW) > 10
    assert all(x is not y for x, y in itertools.pairwise(events))
