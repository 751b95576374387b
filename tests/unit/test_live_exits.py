"""A trade plan's exits on the live path (`strategies/exits.py`) agree with the backtester's: on real
data, every position the backtester closes by a stop, trailing stop, target or holding limit is found
due by the live check on exactly the bar where the backtester closed it, and not one bar earlier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeflow.backtest import BacktestConfig, run_backtest
from tradeflow.domain import Bar, SizingRule
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Strategy, create
from tradeflow.strategies.exits import bars_needed, due_exit, has_exits
from tradeflow.strategies.plan import ExitDistance, TradePlan

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bar(i: int, o: float, h: float, lo: float, c: float) -> Bar:
    return Bar(
        symbol="XYZ",
        ts=T0 + timedelta(days=i),
        open=Decimal(repr(o)),
        high=Decimal(repr(h)),
        low=Decimal(repr(lo)),
        close=Decimal(repr(c)),
        volume=Decimal(1),
    )


PLANS = {
    "percent stop and target": TradePlan(stop_loss=ExitDistance(percent=4), take_profit=ExitDistance(percent=9)),
    "atr stop and trailing": TradePlan(stop_loss=ExitDistance(atr=2), trailing_stop=ExitDistance(atr=3)),
    "percent trailing, holding limit": TradePlan(trailing_stop=ExitDistance(percent=6), max_holding_bars=15),
    "short, atr target": TradePlan(side="short", stop_loss=ExitDistance(percent=5), take_profit=ExitDistance(atr=2)),
}


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("symbol", ["GOOG", "SPY"])
def test_the_live_check_finds_each_backtest_exit_on_its_bar(name: str, symbol: str) -> None:
    bars = load_dataset(symbol)[-1500:]
    plan = PLANS[name].model_copy(update={"sizing": SizingRule(percent=Decimal(100))})
    strategy = create("sma_cross", {"fast": 10, "slow": 30})
    # the plan comes through the config's fields where it can, else as the strategy's own plan
    config = BacktestConfig(allow_short=plan.side != "long")
    result = run_backtest(bars, _with_plan(strategy, plan), config)
    exits = [t for t in result.trades if t.exit_reason not in ("signal", "end_of_data")]
    assert len(exits) >= 3, "the plan should close several positions on real data"
    side_of = {"long": 1, "short": -1}
    for trade in exits:
        side = side_of[trade.side]
        entry_time = bars[trade.entry_bar].ts
        start = max(0, trade.entry_bar - bars_needed(plan))
        if trade.exit_reason == "max_holding":
            # closed at the open of exit_bar: the live check finds it due at the close before
            due = due_exit(plan, side, trade.entry_price, entry_time, bars[start : trade.exit_bar])
            assert due is not None and due.reason == "max_holding"
            early = due_exit(plan, side, trade.entry_price, entry_time, bars[start : trade.exit_bar - 1])
            assert early is None
            continue
        due = due_exit(plan, side, trade.entry_price, entry_time, bars[start : trade.exit_bar + 1])
        assert due is not None, f"{trade.exit_reason} at bar {trade.exit_bar} not found live"
        assert (due.reason, due.bar_time) == (trade.exit_reason, bars[trade.exit_bar].ts)
        if bars[trade.exit_bar].open != Decimal(repr(trade.exit_price)):  # not a gap through the level
            assert due.level == pytest.approx(trade.exit_price, rel=1e-12)
        assert due_exit(plan, side, trade.entry_price, entry_time, bars[start : trade.exit_bar]) is None


def _with_plan(strategy: Strategy, plan: TradePlan) -> Strategy:
    """`strategy` with `plan` as its own plan."""
    cls = type(strategy)
    planned = type(f"Planned{cls.__name__}", (cls,), {"plan": property(lambda self: plan)})
    clone: Strategy = planned(strategy.params)
    return clone


def test_a_trailing_stop_is_not_triggered_by_the_bar_that_raised_it() -> None:
    plan = TradePlan(trailing_stop=ExitDistance(percent=5))
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 113, 120, 112, 115), _bar(2, 115, 116, 113, 114)]
    assert due_exit(plan, 1, 100.0, bars[0].ts, bars[:2]) is None  # 120 raised it to 114; its low 112
    due = due_exit(plan, 1, 100.0, bars[0].ts, bars)
    assert due is not None and (due.reason, due.level, due.bar_time) == ("trailing_stop", 114.0, bars[2].ts)


def test_stop_read_before_target_when_one_bar_touches_both() -> None:
    plan = TradePlan(stop_loss=ExitDistance(percent=5), take_profit=ExitDistance(percent=5))
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 100, 106, 94, 100)]
    due = due_exit(plan, 1, 100.0, bars[0].ts, bars)
    assert due is not None and (due.reason, due.level) == ("stop_loss", 95.0)


def test_nothing_is_due_without_exits_or_before_the_entry() -> None:
    bars = [_bar(i, 100, 101, 99, 100) for i in range(5)]
    assert not has_exits(TradePlan()) and not has_exits(None)
    assert has_exits(TradePlan(max_holding_bars=3))
    plan = TradePlan(stop_loss=ExitDistance(percent=50))
    assert due_exit(plan, 1, 100.0, bars[0].ts - timedelta(days=1), bars) is None  # entry before the bars
    assert due_exit(plan, 1, 100.0, bars[2].ts, bars) is None


def test_reasons_name_the_exit_and_level() -> None:
    plan = TradePlan(stop_loss=ExitDistance(percent=5))
    bars = [_bar(0, 100, 101, 99, 100), _bar(1, 100, 100, 90, 92)]
    due = due_exit(plan, 1, 100.0, bars[0].ts, bars)
    assert due is not None
    assert due.reasons() == {"exit": "stop_loss", "bar": bars[1].ts.isoformat(), "level": 95.0, "bars_held": 1}
