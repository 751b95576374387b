"""Built-in code strategies: registry, parameter validation, live decisions, and vectorised signals that
equal the live path's bar-by-bar walk exactly on real data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pytest

from tradeflow.domain import Bar, SignalAction
from tradeflow.indicators import atr, convergence_lookback, macd, rsi
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Strategy, StrategyError, create, registered

BUILTINS = ["donchian_breakout", "macd_trend", "rsi_mean_reversion", "sma_cross"]
NEW = ["rsi_mean_reversion", "donchian_breakout", "macd_trend"]


@cache
def _columns(symbol: str) -> tuple[np.ndarray, ...]:
    bars = load_dataset(symbol)
    return tuple(np.array([float(getattr(b, k)) for b in bars]) for k in ("open", "high", "low", "close", "volume"))


def _floats(bars: Sequence[Bar], field: str) -> list[float]:
    return [float(getattr(b, field)) for b in bars]


# --- registry and parameters ------------------------------------------------------------------------


def test_registered_lists_all_four_builtins() -> None:
    assert registered() == sorted(registered())
    assert set(BUILTINS) <= set(registered())


@pytest.mark.parametrize(
    ("name", "params", "valid"),
    [
        ("rsi_mean_reversion", {"perod": 14}, ["period", "oversold", "overbought", "atr_period"]),
        ("donchian_breakout", {"entry": 20}, ["entry_period", "exit_period", "atr_period"]),
        ("macd_trend", {"fsat": 12}, ["fast", "slow", "signal", "require_positive", "atr_period"]),
        ("sma_cross", {"quick": 5}, ["fast", "slow", "atr_period"]),
    ],
)
def test_a_wrong_parameter_names_the_field_and_the_valid_ones(
    name: str, params: dict[str, Any], valid: list[str]
) -> None:
    with pytest.raises(StrategyError) as exc:
        create(name, params)
    message = str(exc.value)
    assert f"params.{next(iter(params))}" in message
    assert "valid parameters: " + ", ".join(valid) in message


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("rsi_mean_reversion", {"period": 1}, "params.period"),
        ("rsi_mean_reversion", {"oversold": 0}, "params.oversold"),
        ("rsi_mean_reversion", {"overbought": "high"}, "params.overbought"),
        ("rsi_mean_reversion", {"oversold": 70, "overbought": 30}, "oversold must be smaller than overbought"),
        ("donchian_breakout", {"entry_period": 0}, "params.entry_period"),
        ("donchian_breakout", {"exit_period": -1}, "params.exit_period"),
        ("donchian_breakout", {"atr_period": 0}, "params.atr_period"),
        ("macd_trend", {"signal": 0}, "params.signal"),
        ("macd_trend", {"require_positive": "maybe"}, "params.require_positive"),
        ("macd_trend", {"fast": 26, "slow": 12}, "fast must be smaller than slow"),
    ],
)
def test_invalid_parameters_name_the_field(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(StrategyError, match=field):
        create(name, params)


def test_warmups_cover_the_convergence_lookback_of_recursive_indicators() -> None:
    assert create("rsi_mean_reversion").warmup == convergence_lookback("rsi", 14) + 1
    assert create("rsi_mean_reversion", {"period": 2, "atr_period": 100}).warmup == 101
    assert create("macd_trend").warmup == convergence_lookback("macd", 26, 9) + 1
    assert create("macd_trend", {"fast": 5, "slow": 10, "signal": 4}).warmup == 125
    assert create("donchian_breakout").warmup == 21
    assert create("donchian_breakout", {"entry_period": 5, "exit_period": 30}).warmup == 31
    assert create("donchian_breakout", {"entry_period": 5, "exit_period": 3}).warmup == 15  # the ATR's


# --- live decisions ---------------------------------------------------------------------------------


def _first(name: str, params: dict[str, Any], action: SignalAction, symbol: str = "GOOG") -> tuple[Strategy, list[Bar]]:
    """The strategy and the first `warmup`-bar window of `symbol` on whose last bar it decides `action`."""
    strategy = create(name, params)
    bars = load_dataset(symbol)
    signals = strategy.signals(*_columns(symbol))
    i = int(np.flatnonzero(signals == {SignalAction.BUY: 1, SignalAction.SELL: -1}[action])[0])
    return strategy, bars[i + 1 - strategy.warmup : i + 1]


@pytest.mark.parametrize("action", [SignalAction.BUY, SignalAction.SELL])
def test_rsi_decision_carries_the_crossing_values_and_atr(action: SignalAction) -> None:
    strategy, window = _first("rsi_mean_reversion", {}, action)
    decision = strategy.evaluate(window)
    closes = _floats(window, "close")
    now, before = rsi(closes, 14), rsi(closes[:-1], 14)
    assert now is not None and before is not None
    assert decision.action is action
    assert decision.reasons["rsi"] == round(now, 6) and decision.reasons["prev_rsi"] == round(before, 6)
    if action is SignalAction.BUY:
        assert before <= 30 < now and "crossed up through oversold" in decision.reasons["rule"]
    else:
        assert before >= 70 > now and "crossed down through overbought" in decision.reasons["rule"]
    assert decision.atr == atr(_floats(window, "high"), _floats(window, "low"), closes, 14)


@pytest.mark.parametrize("action", [SignalAction.BUY, SignalAction.SELL])
def test_donchian_decision_compares_with_the_previous_bars_channel(action: SignalAction) -> None:
    strategy, window = _first("donchian_breakout", {"entry_period": 20, "exit_period": 10}, action)
    decision = strategy.evaluate(window)
    close = float(window[-1].close)
    high = max(_floats(window[-21:-1], "high"))
    low = min(_floats(window[-11:-1], "low"))
    assert decision.action is action
    assert decision.reasons["entry_high"] == high and decision.reasons["exit_low"] == low
    assert (close > high) if action is SignalAction.BUY else (close < low)
    assert decision.reasons["rule"].startswith("close above" if action is SignalAction.BUY else "close below")
    assert decision.atr == atr(_floats(window, "high"), _floats(window, "low"), _floats(window, "close"), 14)


@pytest.mark.parametrize("action", [SignalAction.BUY, SignalAction.SELL])
def test_macd_decision_carries_line_signal_and_atr(action: SignalAction) -> None:
    strategy, window = _first("macd_trend", {"atr_period": 10}, action)
    decision = strategy.evaluate(window)
    closes = _floats(window, "close")
    now, before = macd(closes), macd(closes[:-1])
    assert now is not None and before is not None
    assert decision.action is action
    assert decision.reasons["macd"] == round(now.macd, 6) and decision.reasons["signal"] == round(now.signal, 6)
    if action is SignalAction.BUY:
        assert before.macd <= before.signal and now.macd > now.signal
        assert decision.reasons["cross"] == "above" and "above signal" in decision.reasons["rule"]
    else:
        assert before.macd >= before.signal and now.macd < now.signal
        assert decision.reasons["cross"] == "below" and "below signal" in decision.reasons["rule"]
    assert decision.atr == atr(_floats(window, "high"), _floats(window, "low"), closes, 10)


def test_macd_require_positive_drops_crossings_below_zero() -> None:
    plain = create("macd_trend").signals(*_columns("GOOG"))
    positive = create("macd_trend", {"require_positive": True}).signals(*_columns("GOOG"))
    np.testing.assert_array_equal(positive[plain == -1], -1)
    assert ((plain == 1) & (positive == 0)).any()
    assert not ((positive == 1) & (plain != 1)).any()
    line = create("macd_trend")
    closes = _columns("GOOG")[3]
    for i in np.flatnonzero((plain == 1) & (positive == 0))[:5]:
        value = macd(closes[i + 1 - line.warmup : i + 1].tolist())
        assert value is not None and value.macd <= 0


@pytest.mark.parametrize("name", NEW)
def test_short_windows_hold_and_longer_ones_use_the_last_warmup_bars(name: str) -> None:
    strategy = create(name)
    bars = load_dataset("GOOG")[:600]
    short = strategy.evaluate(bars[: strategy.warmup - 1])
    assert short.action is SignalAction.HOLD and short.reasons == {
        "warmup": f"{strategy.warmup - 1}/{strategy.warmup} bars"
    }
    assert strategy.evaluate(bars) == strategy.evaluate(bars[-strategy.warmup :])


def test_live_evaluation_does_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from tradeflow.marketdata import load_dataset\n"
        "from tradeflow.strategies import create\n"
        "bars = load_dataset('GOOG')\n"
        "for name in ('rsi_mean_reversion', 'donchian_breakout', 'macd_trend'):\n"
        "    s = create(name)\n"
        "    s.evaluate(bars[: s.warmup])\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- vectorised signals == the bar-by-bar walk ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rsi_mean_reversion", {}),
        ("rsi_mean_reversion", {"period": 2, "oversold": 10, "overbought": 90}),
        ("donchian_breakout", {}),
        ("donchian_breakout", {"entry_period": 55, "exit_period": 20, "atr_period": 20}),
        ("macd_trend", {}),
        ("macd_trend", {"fast": 5, "slow": 35, "signal": 5, "require_positive": True}),
    ],
)
@pytest.mark.parametrize("symbol", ["GOOG", "EURUSD", "SPY"])
def test_override_equals_the_bar_by_bar_walk(symbol: str, name: str, params: dict[str, Any]) -> None:
    strategy = create(name, params)
    columns = _columns(symbol)
    fast = strategy.signals(*columns)
    walked = Strategy.signals(strategy, *columns, symbol=symbol)
    assert fast.dtype == np.int8 and walked.dtype == np.int8
    np.testing.assert_array_equal(fast, walked)
    assert (fast == 1).sum() >= 5 and (fast == -1).sum() >= 5
    assert not fast[: strategy.warmup - 1].any()


def test_short_series_give_no_signals() -> None:
    for name in NEW:
        strategy = create(name)
        columns = [c[: strategy.warmup - 1] for c in _columns("GOOG")]
        assert strategy.signals(*columns).tolist() == [0] * (strategy.warmup - 1)
