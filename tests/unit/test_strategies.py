"""Strategies: the registry, sma_cross decisions, and live/backtest parity on real data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from pydantic import BaseModel

from tradeflow.domain import Bar, SignalAction
from tradeflow.indicators import Cross, atr_series, cross, sma_series
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Decision, Strategy, StrategyError, create, register, registered
from tradeflow.strategies import base as strategy_base
from tradeflow.strategies.sma_cross import SmaCross

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _bars(closes: Sequence[float | str], spread: str = "0.5") -> list[Bar]:
    bars = []
    for i, close in enumerate(closes):
        c = Decimal(str(close))
        bars.append(
            Bar(
                symbol="TEST",
                timeframe="1d",
                ts=T0 + timedelta(days=i),
                open=c,
                high=c + Decimal(spread),
                low=c - Decimal(spread),
                close=c,
            )
        )
    return bars


def _small() -> Strategy:
    return create("sma_cross", {"fast": 2, "slow": 3, "atr_period": 2})


# --- registry -------------------------------------------------------------------------------------


def test_sma_cross_is_registered_and_created_with_defaults() -> None:
    assert "sma_cross" in registered()
    assert registered() == sorted(registered())
    strategy = create("sma_cross")
    assert isinstance(strategy, SmaCross)
    assert strategy.name == "sma_cross"
    assert strategy.params.model_dump() == {"fast": 10, "slow": 30, "atr_period": 14}
    assert strategy.warmup == 31
    assert create("sma_cross", {"fast": 5, "slow": 20, "atr_period": 40}).warmup == 41


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError) as exc:
        create("sma_crosss")
    message = str(exc.value)
    assert "unknown strategy 'sma_crosss'" in message
    assert "known: " in message
    for name in registered():
        assert name in message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"fast": 0}, "params.fast"),
        ({"fast": "ten"}, "params.fast"),
        ({"slow": 1}, "params.slow"),
        ({"slow": 5000}, "params.slow"),
        ({"atr_period": 0}, "params.atr_period"),
        ({"fats": 3}, "params.fats"),
    ],
)
def test_invalid_parameters_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(StrategyError) as exc:
        create("sma_cross", params)
    message = str(exc.value)
    assert message.startswith("invalid parameters for 'sma_cross': ")
    assert f"{field}:" in message


def test_cross_field_errors_name_the_params_and_the_rule() -> None:
    with pytest.raises(StrategyError) as exc:
        create("sma_cross", {"fast": 30, "slow": 30})
    message = str(exc.value)
    assert "params:" in message
    assert "params.:" not in message  # no dangling separator for a model-level error
    assert "fast must be smaller than slow" in message


def test_every_problem_is_reported() -> None:
    with pytest.raises(StrategyError) as exc:
        create("sma_cross", {"fast": 0, "slow": 1, "atr_period": 0})
    message = str(exc.value)
    for field in ("params.fast:", "params.slow:", "params.atr_period:"):
        assert field in message


def test_strategy_error_is_a_value_error_and_keeps_the_cause() -> None:
    with pytest.raises(ValueError) as exc:
        create("sma_cross", {"fast": 0})
    assert isinstance(exc.value, StrategyError)
    assert exc.value.__cause__ is not None


class _Params(BaseModel):
    n: int = 1


def test_register_rejects_a_second_class_under_a_taken_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategy_base, "_REGISTRY", dict(strategy_base._REGISTRY))

    class Dummy(Strategy):
        Params = _Params

        @property
        def warmup(self) -> int:
            return 1

        def evaluate(self, bars: Sequence[Bar]) -> Decision:
            return Decision(action=SignalAction.HOLD)

    assert register("dummy_for_test")(Dummy) is Dummy
    assert register("dummy_for_test")(Dummy) is Dummy  # re-registering the same class is harmless
    assert "dummy_for_test" in registered()
    assert create("dummy_for_test", {"n": 3}).params == _Params(n=3)
    with pytest.raises(StrategyError, match="already registered"):
        register("sma_cross")(Dummy)


# --- sma_cross on hand-made bars ------------------------------------------------------------------


def test_fast_crossing_above_slow_buys() -> None:
    # before: sma2 = 10, sma3 = 10 (touching); now: sma2 = 11.5 > sma3 = 11
    decision = _small().evaluate(_bars([10, 10, 10, 10, 13]))
    assert decision.action is SignalAction.BUY
    assert decision.reasons["cross"] == Cross.ABOVE.value
    assert decision.reasons["fast"] == 11.5
    assert decision.reasons["slow"] == 11.0
    assert decision.reasons["close"] == 13.0
    assert decision.reasons["rule"] == "sma(2) vs sma(3)"


def test_fast_crossing_below_slow_sells() -> None:
    decision = _small().evaluate(_bars([10, 11, 12, 13, 14, 9]))
    # before: sma2 = 13.5 > sma3 = 13; now: sma2 = 11.5 < sma3 = 12
    assert decision.action is SignalAction.SELL
    assert decision.reasons["cross"] == Cross.BELOW.value


@pytest.mark.parametrize(
    "closes",
    [
        [1, 2, 3, 4, 5],  # fast stays above slow
        [5, 4, 3, 2, 1],  # fast stays below slow
        [7, 7, 7, 7, 7],  # equal throughout
        [1, 2, 3, 4, 3.6],  # a dip that narrows the gap without crossing: 3.8 > 3.5333
    ],
)
def test_no_cross_holds(closes: list[float]) -> None:
    values = [float(c) for c in closes]
    prev = (sum(values[-3:-1]) / 2, sum(values[-4:-1]) / 3)
    now = (sum(values[-2:]) / 2, sum(values[-3:]) / 3)
    assert cross(prev[0], prev[1], now[0], now[1]) is Cross.NONE, "the fixture itself must not cross"
    decision = _small().evaluate(_bars(closes))
    assert decision.action is SignalAction.HOLD
    assert decision.reasons["cross"] == Cross.NONE.value


def test_warm_up_holds_until_slow_plus_one_bars() -> None:
    strategy = _small()
    for n in range(4):
        decision = strategy.evaluate(_bars([10, 10, 10, 13][:n]))
        assert decision.action is SignalAction.HOLD
        assert decision.reasons == {"warmup": f"{n}/4 bars"}
        assert decision.atr is None
    # with the fourth bar the same closes would cross: it is the bar count, not the prices, that held
    assert strategy.evaluate(_bars([10, 10, 10, 10, 13])[1:]).action is SignalAction.BUY


def test_the_decision_is_taken_on_the_last_bar_only() -> None:
    strategy = _small()
    bars = _bars([10, 10, 10, 10, 13, 14, 15])
    assert strategy.evaluate(bars[:5]).action is SignalAction.BUY
    assert strategy.evaluate(bars).action is SignalAction.HOLD  # the cross is in the past


def test_atr_is_reported_with_enough_bars() -> None:
    strategy = create("sma_cross", {"fast": 2, "slow": 3, "atr_period": 3})
    bars = _bars([10, 10, 10, 10, 13], spread="0.5")
    decision = strategy.evaluate(bars)
    # true ranges of the last 3 bars: 1, 1, and the gap bar: |13.5 - 10| = 3.5
    assert decision.atr == pytest.approx((1 + 1 + 3.5) / 3, abs=1e-12)
    no_atr = create("sma_cross", {"fast": 2, "slow": 3, "atr_period": 10}).evaluate(bars)
    assert no_atr.action is SignalAction.BUY
    assert no_atr.atr is None


def test_evaluate_is_pure() -> None:
    strategy = _small()
    bars = _bars([10, 10, 10, 10, 13])
    assert strategy.evaluate(bars) == strategy.evaluate(bars)
    assert strategy.evaluate(list(bars)) == strategy.evaluate(tuple(bars))


# --- live/backtest parity on real data --------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "params"),
    [
        ("GOOG", {"fast": 10, "slow": 30, "atr_period": 14}),
        ("GOOG", {"fast": 5, "slow": 20, "atr_period": 40}),  # ATR needs more bars than the averages
        ("EURUSD", {"fast": 12, "slow": 48, "atr_period": 24}),
    ],
)
def test_walking_bar_by_bar_matches_the_vectorised_crossovers(symbol: str, params: dict[str, int]) -> None:
    """The live path (a sliding window of `warmup` bars) and the backtest path (indicators over the whole
    history) must produce exactly the same signals and the same ATR at every bar."""
    bars = load_dataset(symbol)
    strategy = create("sma_cross", params)
    fast_p, slow_p, atr_p = params["fast"], params["slow"], params["atr_period"]
    closes = [float(b.close) for b in bars]
    fast, slow = sma_series(closes, fast_p), sma_series(closes, slow_p)
    atrs = atr_series([float(b.high) for b in bars], [float(b.low) for b in bars], closes, atr_p)

    live: list[SignalAction] = []
    for i in range(len(bars)):
        window = bars[max(0, i + 1 - strategy.warmup) : i + 1]
        decision = strategy.evaluate(window)
        live.append(decision.action)
        if i >= slow_p:
            assert decision.reasons["fast"] == round(float(fast[i]), 6)
            assert decision.reasons["slow"] == round(float(slow[i]), 6)
            expected_atr = None if math.isnan(atrs[i]) else float(atrs[i])
            assert decision.atr == expected_atr, i
            if i >= atr_p:
                assert decision.atr is not None

    mapping = {Cross.ABOVE: SignalAction.BUY, Cross.BELOW: SignalAction.SELL, Cross.NONE: SignalAction.HOLD}
    backtest = [SignalAction.HOLD] * slow_p + [
        mapping[cross(fast[i - 1], slow[i - 1], fast[i], slow[i])] for i in range(slow_p, len(bars))
    ]
    assert live == backtest
    assert live.count(SignalAction.BUY) >= 5
    assert live.count(SignalAction.SELL) >= 5
    # crossovers are computed on exact windows, so a longer window changes nothing either
    for i in range(strategy.warmup, len(bars), 173):
        assert strategy.evaluate(bars[: i + 1]).action is live[i]


def test_parity_signals_are_the_documented_crossovers_of_goog() -> None:
    """An independent recount with numpy on GOOG: each BUY is a bar where sma10 - sma30 turns positive
    from <= 0, each SELL where it turns negative from >= 0."""
    bars = load_dataset("GOOG")
    closes = np.array([float(b.close) for b in bars])
    diff = sma_series(closes, 10) - sma_series(closes, 30)
    strategy = create("sma_cross", {"fast": 10, "slow": 30, "atr_period": 14})
    buys = [i for i in range(31, len(bars)) if strategy.evaluate(bars[i + 1 - 31 : i + 1]).action is SignalAction.BUY]
    expected = [i for i in range(31, len(bars)) if diff[i - 1] <= 0 < diff[i]]
    assert buys == expected
    # GOOG's close on the first buy is above where it was 30 bars earlier (a trend follower buys strength)
    assert closes[buys[0]] > closes[buys[0] - 30]
