"""The `pro` strategy: each of its seven rules on hand-built bars, market sessions per asset class
(daylight-saving boundaries included), the pluggable AI gate, parameters, and vectorised signals that
equal the live path's bar-by-bar walk on real data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import pytest

from tradeflow.domain import Bar, SignalAction
from tradeflow.indicators import atr, convergence_lookback
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Strategy, StrategyError, create
from tradeflow.strategies.pro import (
    RULES,
    ProParams,
    ProStrategy,
    momentum_rule,
    risk_rule,
    session_rule,
    trend_rule,
    trigger_rule,
    zone_rule,
)
from tradeflow.strategies.sentiment import (
    NeutralSentiment,
    SentimentGate,
    SentimentVerdict,
    Side,
    sentiment_gate,
    set_sentiment_gate,
)
from tradeflow.strategies.sessions import asset_class, bar_seconds, session_open

SMALL = ProParams(trend_fast=3, trend_slow=5, trigger_ema=3, rsi_period=3, atr_period=3, zone_lookback=20, zone_width=2)
ALT = {
    "trend_fast": 10,
    "trend_slow": 30,
    "trigger_ema": 20,
    "rsi_period": 7,
    "rsi_min": 45,
    "rsi_max": 80,
    "zone_atr": 0.5,
    "zone_lookback": 200,
    "zone_width": 5,
    "atr_stop": 3,
    "max_stop_pct": 5,
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@cache
def _data(symbol: str) -> tuple[list[Bar], tuple[np.ndarray, ...]]:
    bars = load_dataset(symbol)
    cols = tuple(np.array([float(getattr(b, k)) for b in bars]) for k in ("open", "high", "low", "close", "volume"))
    return bars, cols


def _first_window(action: SignalAction, symbol: str = "GOOG") -> list[Bar]:
    """The first `warmup`-bar window of `symbol` on whose last bar the default `pro` decides `action`."""
    strategy = create("pro")
    bars, cols = _data(symbol)
    signals = strategy.signals(*cols, ts=[b.ts for b in bars], symbol=symbol)
    i = int(np.flatnonzero(signals == (1 if action is SignalAction.BUY else -1))[0])
    return bars[i + 1 - strategy.warmup : i + 1]


def _bars(closes: Sequence[float], symbol: str, start: datetime, step: timedelta) -> list[Bar]:
    return [
        Bar(
            symbol=symbol,
            ts=start + k * step,
            open=Decimal(str(c)),
            high=Decimal(str(c + 1)),
            low=Decimal(str(c - 1)),
            close=Decimal(str(c)),
            volume=Decimal(1),
        )
        for k, c in enumerate(closes)
    ]


# --- rule 1: trend ------------------------------------------------------------------------------------


def test_trend_rising_closes_give_a_long_bias() -> None:
    side, rule = trend_rule([100.0 + k for k in range(40)], SMALL)
    assert side == "long" and rule["verdict"] == "pass"
    assert rule["reason"].startswith("ema3 ") and "> ema5" in rule["reason"] and rule["reason"].endswith("long bias")
    assert rule["values"]["fast"] > rule["values"]["slow"]


def test_trend_falling_closes_give_a_short_bias() -> None:
    side, rule = trend_rule([200.0 - k for k in range(40)], SMALL)
    assert side == "short" and rule["verdict"] == "pass" and rule["reason"].endswith("short bias")


def test_trend_fails_when_the_close_is_on_the_wrong_side_of_the_slow_ema() -> None:
    # rising by 1: ema3 lags 1, ema5 lags 2 (128 vs 127 at close 129); a close of 126 keeps ema3 (127) above
    # ema5 (126.67) but is below ema5
    side, rule = trend_rule([100.0 + k for k in range(30)] + [126.0], SMALL)
    assert side == "long" and rule["verdict"] == "fail"
    assert "close 126 <= ema5" in rule["reason"] and "no bias" in rule["reason"]


def test_trend_flat_closes_have_no_bias() -> None:
    side, rule = trend_rule([50.0] * 30, SMALL)
    assert side == "long" and rule["verdict"] == "fail" and rule["reason"] == "ema3 50 = ema5 50: no bias"


# --- rule 2: sessions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("GOOG", "equity"),
        ("SPY", "equity"),
        ("ASML.AS", "equity"),
        ("002032.SZ", "equity"),
        ("EURUSD", "fx"),
        ("EUR/USD", "fx"),
        ("gbp-jpy", "fx"),
        ("USDCHF", "fx"),
        ("BTCUSD", "crypto"),
        ("BTC/USD", "crypto"),
        ("ETH-USDT", "crypto"),
        ("SOLUSDC", "crypto"),
        ("DOGE/EUR", "crypto"),
    ],
)
def test_asset_class_of_a_symbol(symbol: str, expected: str) -> None:
    assert asset_class(symbol) == expected


HOUR = 3600.0


@pytest.mark.parametrize(
    ("ts", "is_open"),
    [
        # winter (EST = UTC-5): Friday 2024-03-08
        (utc(2024, 3, 8, 14, 29), False),  # 09:29
        (utc(2024, 3, 8, 14, 30), True),  # 09:30
        (utc(2024, 3, 8, 20, 59), True),  # 15:59
        (utc(2024, 3, 8, 21, 0), False),  # 16:00
        # DST starts Sunday 2024-03-10 (EDT = UTC-4): the same UTC clock is an hour later in New York
        (utc(2024, 3, 11, 13, 29), False),  # 09:29 EDT
        (utc(2024, 3, 11, 13, 30), True),  # 09:30 EDT (08:30 if DST were ignored)
        (utc(2024, 3, 11, 19, 59), True),  # 15:59 EDT
        (utc(2024, 3, 11, 20, 0), False),  # 16:00 EDT (15:00 if DST were ignored)
        # DST ends Sunday 2024-11-03
        (utc(2024, 11, 1, 13, 30), True),  # Friday 09:30 EDT
        (utc(2024, 11, 4, 13, 30), False),  # Monday 08:30 EST
        (utc(2024, 11, 4, 14, 30), True),  # Monday 09:30 EST
        # weekends
        (utc(2024, 3, 9, 15, 0), False),  # Saturday
        (utc(2024, 3, 10, 15, 0), False),  # Sunday
    ],
)
def test_equity_session_is_the_us_regular_session_in_new_york_time(ts: datetime, is_open: bool) -> None:
    ok, reason = session_open("equity", ts, HOUR)
    assert ok is is_open
    assert ("inside" if is_open else "outside") in reason and "09:30-16:00 New York" in reason


@pytest.mark.parametrize(
    ("ts", "is_open"),
    [
        (utc(2024, 3, 3, 21, 59), False),  # Sunday 16:59 EST
        (utc(2024, 3, 3, 22, 0), True),  # Sunday 17:00 EST
        (utc(2024, 3, 6, 3, 0), True),  # Wednesday night
        (utc(2024, 3, 8, 21, 59), True),  # Friday 16:59 EST
        (utc(2024, 3, 8, 22, 0), False),  # Friday 17:00 EST
        (utc(2024, 3, 9, 12, 0), False),  # Saturday
        (utc(2024, 3, 10, 20, 59), False),  # Sunday 16:59 EDT (DST began that morning)
        (utc(2024, 3, 10, 21, 0), True),  # Sunday 17:00 EDT
        (utc(2024, 3, 15, 20, 59), True),  # Friday 16:59 EDT
        (utc(2024, 3, 15, 21, 0), False),  # Friday 17:00 EDT
        (utc(2024, 11, 3, 21, 59), False),  # Sunday 16:59 EST (DST ended that morning)
        (utc(2024, 11, 3, 22, 0), True),  # Sunday 17:00 EST
    ],
)
def test_fx_session_runs_from_sunday_to_friday_17_00_new_york(ts: datetime, is_open: bool) -> None:
    ok, reason = session_open("fx", ts, HOUR)
    assert ok is is_open and "Sun 17:00 - Fri 17:00 New York" in reason


def test_crypto_is_always_open_and_daily_bars_are_sessions() -> None:
    saturday_night = utc(2024, 3, 9, 3, 0)
    assert session_open("crypto", saturday_night, 60.0) == (True, "crypto trades 24/7")
    for cls in ("equity", "fx", "crypto"):
        ok, reason = session_open(cls, saturday_night, 86_400.0)
        assert ok and "1-day bars are whole sessions" in reason


def test_bar_length_is_the_smallest_gap_between_bar_times() -> None:
    friday = utc(2024, 3, 8, 19, 0)
    hourly = [friday, friday + timedelta(hours=1), friday + timedelta(hours=67), friday + timedelta(hours=68)]
    assert bar_seconds(hourly) == 3600.0
    daily = [utc(2024, 3, 7), utc(2024, 3, 8), utc(2024, 3, 11)]
    assert bar_seconds(daily) == 86_400.0
    assert bar_seconds([friday]) == 86_400.0


def test_session_rule_takes_the_bar_length_from_the_bars_or_the_timeframe() -> None:
    night = [utc(2024, 3, 6, 6, 0) + timedelta(hours=k) for k in range(5)]  # 01:00-05:00 EST, Wednesday
    rule = session_rule(night, "GOOG", SMALL)
    assert rule["verdict"] == "fail" and rule["values"] == {"asset_class": "equity", "bar_seconds": 3600.0}
    assert session_rule(night, "EURUSD", SMALL)["verdict"] == "pass"
    assert session_rule(night, "BTC/USD", SMALL)["verdict"] == "pass"
    assert session_rule(night, "GOOG", SMALL.model_copy(update={"timeframe": "1d"}))["verdict"] == "pass"
    assert session_rule(night, "GOOG", SMALL.model_copy(update={"asset_class": "crypto"}))["verdict"] == "pass"


def test_an_intraday_equity_bar_outside_the_session_holds() -> None:
    strategy = ProStrategy(SMALL)
    bars = _bars([100.0 + k for k in range(strategy.warmup)], "GOOG", utc(2024, 3, 4, 0, 0), timedelta(hours=1))
    decision = strategy.evaluate(bars)
    session = decision.reasons["rules"][1]
    assert session["rule"] == "session" and session["verdict"] == "fail"
    assert decision.action is SignalAction.HOLD and "session" in decision.reasons["summary"]


# --- rule 3: zones --------------------------------------------------------------------------------------

# lows: pivot lows at 100 (bar 4) and 100.5 (bar 12) make one support zone 100-100.5; highs (lows + 2):
# pivot highs of 112 at bars 8 and 16 make a resistance zone 112-112. The last bar: low 104, high 106.
LOWS = [110, 108, 105, 103, 100, 103, 105, 108, 110, 108, 105, 103, 100.5, 103, 105, 108, 110, 108, 106, 104]
HIGHS = [x + 2 for x in LOWS]


def test_zone_long_passes_within_zone_atr_of_support() -> None:
    rule = zone_rule(HIGHS, LOWS, 105.0, 4.0, "long", SMALL)  # low 104 is 3.5 above 100.5; limit 4
    assert rule["verdict"] == "pass"
    assert rule["values"] == {"zone_low": 100.0, "zone_high": 100.5, "distance": 3.5, "limit": 4.0}
    assert "support zone 100-100.5 (2 touches)" in rule["reason"] and "0.875 ATR" in rule["reason"]


def test_zone_long_fails_farther_than_zone_atr_from_support() -> None:
    rule = zone_rule(HIGHS, LOWS, 105.0, 2.0, "long", SMALL)  # limit 2 < 3.5
    assert rule["verdict"] == "fail" and "1.75 ATR" in rule["reason"] and "limit 1 ATR = 2" in rule["reason"]


def test_zone_short_measures_from_the_bar_high_to_resistance() -> None:
    near = zone_rule(HIGHS, LOWS, 105.0, 4.0, "short", SMALL.model_copy(update={"zone_atr": 2.0}))
    assert near["verdict"] == "pass" and near["values"]["distance"] == 6.0  # 112 - 106
    assert "resistance zone 112-112" in near["reason"]
    assert zone_rule(HIGHS, LOWS, 105.0, 4.0, "short", SMALL)["verdict"] == "fail"


def test_zone_fails_without_zones_or_atr() -> None:
    rising = [float(k) + 100 for k in range(20)]
    none = zone_rule([x + 2 for x in rising], rising, 120.0, 1.0, "long", SMALL)
    assert none["verdict"] == "fail" and none["reason"].startswith("no support zone in the last 20 bars")
    for vol in (None, 0.0, float("nan")):
        assert zone_rule(HIGHS, LOWS, 105.0, vol, "long", SMALL)["verdict"] == "fail"


# --- rule 4: momentum -----------------------------------------------------------------------------------


def test_momentum_long_needs_rsi_in_band_and_rising() -> None:
    # alternating +1/-1 keeps RSI(3) mid-band; ending on a rise makes it rising
    zigzag = [100.0 + (k % 2) for k in range(20)]
    rising = momentum_rule([*zigzag, 101.5], "long", SMALL)
    assert rising["verdict"] == "pass" and "in the band and rising" in rising["reason"]
    assert 40 <= rising["values"]["rsi"] <= 70 and rising["values"]["rsi"] > rising["values"]["prev_rsi"]
    falling = momentum_rule([*zigzag, 100.6], "long", SMALL)
    assert falling["verdict"] == "fail" and "falling" in falling["reason"]
    straight_up = momentum_rule([100.0 + k for k in range(20)], "long", SMALL)  # RSI 100
    assert straight_up["verdict"] == "fail" and "outside the band" in straight_up["reason"]


def test_momentum_short_mirrors_the_band_and_direction() -> None:
    zigzag = [100.0 + (k % 2) for k in range(20)]
    rule = momentum_rule([*zigzag, 100.6], "short", SMALL)
    assert rule["verdict"] == "pass" and "a short needs [30, 60] and falling" in rule["reason"]
    assert momentum_rule([100.0 - k for k in range(20)], "short", SMALL)["verdict"] == "fail"  # RSI 0


# --- rule 5: trigger ------------------------------------------------------------------------------------


def test_trigger_ema_reclaim_and_loss() -> None:
    closes = [10.0] * 10 + [9.0, 11.0]
    rule = trigger_rule(closes, closes, "long", SMALL)
    assert rule["verdict"] == "pass" and "reclaimed ema3" in rule["reason"]
    closes = [10.0] * 10 + [11.0, 9.0]
    rule = trigger_rule(closes, closes, "short", SMALL)
    assert rule["verdict"] == "pass" and "lost ema3" in rule["reason"]
    assert trigger_rule(closes, closes, "long", SMALL)["verdict"] == "fail"


def test_trigger_engulfing_bars() -> None:
    rising = [10.0 + k for k in range(10)]  # always above its EMA: no reclaim possible
    # previous bar bearish 20 -> 19.5; current opens 19.4 and closes 20.5: its body covers the previous one
    closes, opens = [*rising, 19.5, 20.5], [*rising, 20.0, 19.4]
    rule = trigger_rule(opens, closes, "long", SMALL)
    assert rule["verdict"] == "pass" and rule["reason"].startswith("bullish engulfing")
    not_covering = trigger_rule([*rising, 20.0, 19.6], closes, "long", SMALL)  # opens above the prior close
    assert not_covering["verdict"] == "fail" and "no bullish engulfing" in not_covering["reason"]
    falling = [30.0 - k for k in range(10)]
    closes, opens = [*falling, 20.5, 19.5], [*falling, 20.0, 20.6]
    rule = trigger_rule(opens, closes, "short", SMALL)
    assert rule["verdict"] == "pass" and rule["reason"].startswith("bearish engulfing")


# --- rule 6: risk ---------------------------------------------------------------------------------------


def test_risk_sizes_the_stop_from_the_atr() -> None:
    stop, rule = risk_rule(100.0, 2.0, "long", SMALL)
    assert stop == 96.0 and rule["verdict"] == "pass"
    assert rule["reason"] == "stop 96 = close 100 - 2 x ATR3 2 (4% of price, max 10%)"
    stop, rule = risk_rule(100.0, 2.0, "short", SMALL)
    assert stop == 104.0 and rule["verdict"] == "pass" and rule["values"]["atr"] == 2.0


def test_risk_fails_on_an_unusable_stop() -> None:
    assert risk_rule(100.0, 6.0, "long", SMALL)[1]["verdict"] == "fail"  # 12 % > 10 %
    for vol in (None, 0.0, float("nan")):
        stop, rule = risk_rule(100.0, vol, "long", SMALL)
        assert stop is None and rule["verdict"] == "fail" and "unusable" in rule["reason"]


# --- the whole pipeline on real bars --------------------------------------------------------------------


@pytest.mark.parametrize("action", [SignalAction.BUY, SignalAction.SELL])
def test_a_signal_carries_all_seven_rules_and_the_atr(action: SignalAction) -> None:
    window = _first_window(action)
    decision = create("pro").evaluate(window)
    assert decision.action is action
    rules = decision.reasons["rules"]
    assert [r["rule"] for r in rules] == list(RULES)
    assert all(r["verdict"] == "pass" for r in rules[:6])
    assert rules[6]["verdict"] == "neutral" and rules[6]["reason"] == "no AI configured: neutral"
    assert decision.reasons["side"] == ("long" if action is SignalAction.BUY else "short")
    highs, lows, closes = ([float(getattr(b, k)) for b in window] for k in ("high", "low", "close"))
    assert decision.atr is not None and decision.atr == atr(highs, lows, closes, 14)
    assert rules[5]["values"]["atr"] == round(decision.atr, 8)
    assert json.loads(json.dumps(decision.reasons)) == decision.reasons  # plain JSON, stored with the signal


def test_all_seven_rules_are_explained_when_the_trend_fails() -> None:
    strategy = create("pro")
    bars, _ = _data("GOOG")
    for i in range(strategy.warmup, len(bars)):
        decision = strategy.evaluate(bars[i + 1 - strategy.warmup : i + 1])
        if decision.reasons["rules"][0]["verdict"] == "fail":
            break
    else:
        pytest.fail("the trend never failed on GOOG")
    rules = decision.reasons["rules"]
    assert decision.action is SignalAction.HOLD and [r["rule"] for r in rules] == list(RULES)
    assert all(r["reason"] for r in rules)
    assert rules[6]["verdict"] == "neutral" and rules[6]["reason"].startswith("not consulted: trend")


class _Fixed:
    def __init__(self, verdict: SentimentVerdict) -> None:
        self.verdict = verdict
        self.calls: list[tuple[str, datetime, Side]] = []

    def assess(self, symbol: str, ts: datetime, side: Side, context: Mapping[str, Any]) -> SentimentVerdict:
        self.calls.append((symbol, ts, side))
        assert set(context) == {"close", "atr", "stop", "rules"} and len(context["rules"]) == 6
        return self.verdict


class _Broken:
    def assess(self, symbol: str, ts: datetime, side: Side, context: Mapping[str, Any]) -> SentimentVerdict:
        raise TimeoutError("model did not answer")


def test_a_failing_gate_blocks_and_others_do_not() -> None:
    window = _first_window(SignalAction.BUY)
    params = ProParams()
    bearish = _Fixed(SentimentVerdict("fail", -0.8, "headlines bearish"))
    blocked = ProStrategy(params, sentiment=bearish).evaluate(window)
    assert blocked.action is SignalAction.HOLD and blocked.reasons["summary"] == "HOLD: ai failed the long setup"
    ai = blocked.reasons["rules"][6]
    assert ai == {"rule": "ai", "verdict": "fail", "reason": "headlines bearish", "values": {"score": -0.8}}
    assert bearish.calls == [("GOOG", window[-1].ts, "long")]
    bullish = _Fixed(SentimentVerdict("pass", 0.5, "headlines bullish"))
    assert ProStrategy(params, sentiment=bullish).evaluate(window).action is SignalAction.BUY
    broken = ProStrategy(params, sentiment=_Broken()).evaluate(window)
    assert broken.action is SignalAction.BUY
    assert broken.reasons["rules"][6]["reason"] == "sentiment gate error: TimeoutError: model did not answer"


def test_the_neutral_gate_never_blocks_and_is_the_default() -> None:
    assert isinstance(sentiment_gate(), NeutralSentiment) and isinstance(NeutralSentiment(), SentimentGate)
    verdict = NeutralSentiment().assess("GOOG", utc(2024, 1, 2), "long", {})
    assert verdict == SentimentVerdict("neutral", None, "no AI configured: neutral") and not verdict.blocks
    bars, cols = _data("GOOG")
    neutral = _Fixed(SentimentVerdict("neutral", 0.0, "undecided"))
    gated = ProStrategy(ProParams(), sentiment=neutral).signals(*cols, ts=[b.ts for b in bars], symbol="GOOG")
    np.testing.assert_array_equal(gated, create("pro").signals(*cols, ts=[b.ts for b in bars], symbol="GOOG"))
    assert len(neutral.calls) == int((gated != 0).sum())  # asked about setups only, and none blocked


@pytest.fixture
def failing_gate() -> Iterator[_Fixed]:
    gate = _Fixed(SentimentVerdict("fail", None, "configured to refuse"))
    previous = set_sentiment_gate(gate)
    yield gate
    set_sentiment_gate(previous)


def test_a_process_wide_gate_applies_to_created_strategies(failing_gate: _Fixed) -> None:
    bars, cols = _data("GOOG")
    assert not create("pro").signals(*cols, ts=[b.ts for b in bars], symbol="GOOG").any()
    assert failing_gate.calls
    decision = create("pro").evaluate(_first_window_with_gate_restored())
    assert decision.action is SignalAction.HOLD and decision.reasons["rules"][6]["reason"] == "configured to refuse"


def _first_window_with_gate_restored() -> list[Bar]:
    previous = set_sentiment_gate(None)
    try:
        return _first_window(SignalAction.BUY)
    finally:
        set_sentiment_gate(previous)


def test_sentiment_verdicts_and_gates_are_checked() -> None:
    with pytest.raises(ValueError, match="verdict must be one of pass, fail, neutral"):
        SentimentVerdict("maybe", None, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"score must be a number in \[-1, 1\]"):
        SentimentVerdict("pass", 1.5, "x")
    with pytest.raises(TypeError, match="assess"):
        set_sentiment_gate(object())  # type: ignore[arg-type]


# --- parameters, warm-up, live path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"trend_fats": 20}, "params.trend_fats"),
        ({"trend_fast": 1}, "params.trend_fast"),
        ({"zone_atr": -1}, "params.zone_atr"),
        ({"atr_stop": 0}, "params.atr_stop"),
        ({"asset_class": "bond"}, "params.asset_class"),
        ({"timeframe": "2h"}, "params.timeframe: Value error, unknown timeframe '2h'"),
        ({"trend_fast": 50, "trend_slow": 50}, "trend_fast must be smaller than trend_slow"),
        ({"rsi_min": 70, "rsi_max": 40}, "rsi_min must be smaller than rsi_max"),
        ({"zone_lookback": 10, "zone_width": 5}, "zone_lookback must be more than 2 x zone_width"),
    ],
)
def test_invalid_parameters_name_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyError, match=message.replace("(", r"\(")) as exc:
        create("pro", params)
    assert "valid parameters: trend_fast, trend_slow, trigger_ema" in str(exc.value)


def test_warmup_covers_the_convergence_of_the_recursive_indicators() -> None:
    assert create("pro").warmup == convergence_lookback("ema", 50) + 1 == 601
    assert create("pro", {"trend_fast": 50, "trend_slow": 200}).warmup == 2401
    assert create("pro", {"trend_slow": 10, "trend_fast": 5, "rsi_period": 30}).warmup == 721
    assert create("pro", {"trend_slow": 10, "trend_fast": 5, "zone_lookback": 800}).warmup == 800


def test_short_windows_hold_and_longer_ones_use_the_last_warmup_bars() -> None:
    strategy = create("pro")
    bars, _ = _data("GOOG")
    short = strategy.evaluate(bars[: strategy.warmup - 1])
    assert short.action is SignalAction.HOLD and short.reasons == {"warmup": "600/601 bars"}
    assert strategy.evaluate(bars[:900]) == strategy.evaluate(bars[900 - strategy.warmup : 900])


def test_live_evaluation_does_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from tradeflow.marketdata import load_dataset\n"
        "from tradeflow.strategies import create\n"
        "for symbol in ('GOOG', 'EURUSD'):\n"
        "    bars = load_dataset(symbol)\n"
        "    s = create('pro')\n"
        "    s.evaluate(bars[: s.warmup])\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- vectorised signals == the bar-by-bar walk ----------------------------------------------------------


@pytest.mark.parametrize("params", [{}, ALT], ids=["defaults", "alt"])
@pytest.mark.parametrize(
    ("dataset", "symbol"),
    [("GOOG", "GOOG"), ("EURUSD", "EURUSD"), ("EURUSD", "XYZ")],
    ids=["GOOG-daily", "EURUSD-hourly-fx", "EURUSD-hourly-as-equity"],
)
def test_override_equals_the_bar_by_bar_walk(dataset: str, symbol: str, params: dict[str, Any]) -> None:
    strategy = create("pro", params)
    bars, cols = _data(dataset)
    ts = [b.ts for b in bars]
    fast = strategy.signals(*cols, ts=ts, symbol=symbol)
    walked = Strategy.signals(strategy, *cols, ts=ts, symbol=symbol)
    assert fast.dtype == np.int8 and walked.dtype == np.int8
    np.testing.assert_array_equal(fast, walked)
    assert not fast[: strategy.warmup - 1].any()
    if params:
        assert (fast == 1).any() and (fast == -1).any()
    else:
        assert (fast == 1).sum() >= 5 and (fast == -1).sum() >= 5


def test_override_equals_the_walk_without_timestamps() -> None:
    strategy = create("pro", ALT)
    _, cols = _data("SPY")
    cols = tuple(c[:2500] for c in cols)
    np.testing.assert_array_equal(strategy.signals(*cols), Strategy.signals(strategy, *cols))


def test_the_session_gate_keeps_intraday_equity_signals_inside_regular_hours() -> None:
    strategy = create("pro")
    bars, cols = _data("EURUSD")
    ts = [b.ts for b in bars]
    as_fx = strategy.signals(*cols, ts=ts, symbol="EURUSD")
    as_equity = strategy.signals(*cols, ts=ts, symbol="XYZ")
    assert not ((as_equity != 0) & (as_fx != as_equity)).any()  # the equity gate only removes signals
    assert (as_equity != 0).sum() < (as_fx != 0).sum()
    for i in np.flatnonzero(as_equity):
        assert session_open("equity", ts[int(i)], 3600.0)[0]
    for i in np.flatnonzero(as_fx):
        assert session_open("fx", ts[int(i)], 3600.0)[0]


def test_short_series_give_no_signals() -> None:
    strategy = create("pro")
    _, cols = _data("GOOG")
    assert not strategy.signals(*(c[: strategy.warmup - 1] for c in cols)).any()


def test_the_plan_is_rule_six_an_atr_stop_sized_to_risk_a_fraction_of_equity() -> None:
    from tradeflow.backtest import BacktestConfig, run_backtest

    strategy = create("pro", {"atr_stop": 2.5, "risk_pct": 2})
    plan = strategy.plan
    assert plan is not None and plan.stop_loss is not None and plan.sizing is not None
    assert (plan.stop_loss.atr, plan.sizing.method.value, plan.sizing.risk_fraction) == (
        2.5,
        "atr_risk",
        Decimal("0.02"),
    )
    result = run_backtest(load_dataset("GOOG"), strategy, BacktestConfig(cash=100_000))
    assert result.trades and all(t.size * t.entry_price < 100_000 for t in result.trades)
    stopped = [t for t in result.trades if t.exit_reason == "stop_loss"]
    assert stopped  # a stop lost about risk_pct of the equity at entry (more on a gap, plus costs)
    assert all(-0.05 * 100_000 < t.pnl < 0 for t in stopped)
