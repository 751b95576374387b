"""The backtest engine on hand-made bars: fills, costs, sizing, reversal, stops, end of data, metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from tradeflow.backtest import (
    BacktestConfig,
    Ohlcv,
    Trade,
    compute_metrics,
    drawdown_pct,
    max_drawdown_duration,
    run_backtest,
)
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import create

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bars(
    opens: list[float], closes: list[float], highs: list[float] | None = None, lows: list[float] | None = None
) -> Ohlcv:
    o, c = np.array(opens), np.array(closes)
    h = np.array(highs) if highs is not None else np.maximum(o, c) + 1
    lo = np.array(lows) if lows is not None else np.minimum(o, c) - 1
    return Ohlcv.from_arrays(o, h, lo, c, ts=[T0 + timedelta(days=i) for i in range(len(c))])


# opens and closes differ everywhere so a fill at the wrong one shows
OPENS = [100.0, 101.0, 102.0, 104.0, 108.0, 107.0, 103.0, 100.0]
CLOSES = [100.5, 101.5, 103.0, 106.0, 107.5, 104.0, 101.0, 99.0]


def test_fill_at_next_open_in_whole_units() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0]
    result = run_backtest(_bars(OPENS, CLOSES), signals, BacktestConfig(cash=1000))
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.bars_held) == (2, 4, 2)
    assert (trade.entry_price, trade.exit_price, trade.size) == (102.0, 108.0, 9.0)  # 1000 // 102 = 9
    assert trade.pnl == pytest.approx(54.0) and trade.exit_reason == "signal"
    assert trade.entry_time == T0 + timedelta(days=2) and trade.exit_time == T0 + timedelta(days=4)
    assert trade.return_pct == pytest.approx(54 / 918 * 100)
    cash = 1000 - 918
    expected = [1000, 1000, cash + 9 * 103, cash + 9 * 106, 1054, 1054, 1054, 1054]
    assert result.equity_curve == pytest.approx(expected)
    assert result.metrics.total_return_pct == pytest.approx(5.4)
    assert result.metrics.exposure_pct == pytest.approx(3 / 8 * 100)  # entry to exit bar, inclusive
    assert result.timestamps is not None and len(result.timestamps) == 8


def test_fill_at_the_signal_bars_close() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0]
    result = run_backtest(_bars(OPENS, CLOSES), signals, BacktestConfig(cash=1000, fill="close"))
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.entry_price, trade.exit_price) == (1, 3, 101.5, 106.0)
    assert trade.size == 9.0  # 1000 // 101.5


def test_commission_is_charged_on_both_sides_and_included_in_sizing() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0]
    result = run_backtest(_bars(OPENS, CLOSES), signals, BacktestConfig(cash=1000, commission=0.01))
    (trade,) = result.trades
    assert trade.size == 9.0  # 1000 // (102 * 1.01) = 9
    commission = 0.01 * 9 * 102 + 0.01 * 9 * 108
    assert trade.commission == pytest.approx(commission)
    assert trade.pnl == pytest.approx(54 - commission)
    assert result.metrics.final_equity == pytest.approx(1000 + 54 - commission)
    # the entry commission shows in the equity of the entry bar
    assert result.equity_curve[2] == pytest.approx(1000 - 0.01 * 918 - 918 + 9 * 103)


def test_sizing_counts_the_commission_and_can_be_fractional_or_a_percent() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0]
    bars = _bars(OPENS, CLOSES)
    # 1020 // 102 = 10 units without commission, 9 with it
    assert run_backtest(bars, signals, BacktestConfig(cash=1020)).trades[0].size == 10
    assert run_backtest(bars, signals, BacktestConfig(cash=1020, commission=0.001)).trades[0].size == 9
    frac = run_backtest(bars, signals, BacktestConfig(cash=1000, commission=0.001, fractional=True)).trades[0]
    assert frac.size == pytest.approx(1000 / (102 * 1.001))
    half = run_backtest(bars, signals, BacktestConfig(cash=1000, size_pct=50)).trades[0]
    assert half.size == 4.0  # 500 // 102


def test_an_entry_smaller_than_one_unit_is_skipped() -> None:
    result = run_backtest(_bars(OPENS, CLOSES), [0, 1, 0, -1, 0, 0, 0, 0], BacktestConfig(cash=50))
    assert result.trades == [] and result.equity_curve.tolist() == [50.0] * 8


def test_slippage_moves_market_fills_against_the_trade() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0]
    cfg = BacktestConfig(cash=10_000, slippage_bps=10, allow_short=True)
    long, short = run_backtest(_bars(OPENS, CLOSES), signals, cfg).trades
    assert long.entry_price == pytest.approx(102 * 1.001) and long.exit_price == pytest.approx(108 * 0.999)
    assert short.side == "short" and short.entry_price == pytest.approx(108 * 0.999)
    assert short.exit_reason == "end_of_data" and short.exit_price == pytest.approx(99 * 1.001)


def test_long_only_sells_close_and_never_open_and_buys_do_not_pyramid() -> None:
    signals = [-1, 1, 1, 0, -1, -1, 0, 0]
    result = run_backtest(_bars(OPENS, CLOSES), signals, BacktestConfig(cash=1000))
    assert [(t.side, t.entry_bar, t.exit_bar) for t in result.trades] == [("long", 2, 5)]


def test_reversal_closes_and_opens_the_other_side_on_the_same_fill() -> None:
    signals = [0, 1, 0, -1, 0, 1, 0, 0]
    result = run_backtest(_bars(OPENS, CLOSES), signals, BacktestConfig(cash=1000, allow_short=True))
    sides = [(t.side, t.entry_bar, t.exit_bar, t.exit_reason) for t in result.trades]
    assert sides == [("long", 2, 4, "signal"), ("short", 4, 6, "signal"), ("long", 6, 7, "end_of_data")]
    short = result.trades[1]
    assert short.size == 9.0  # 1054 // 108
    assert short.pnl == pytest.approx(9 * (108 - 103))
    # a flat account with allow_short: a sell opens a short
    only_sell = run_backtest(_bars(OPENS, CLOSES), [0, -1, 0, 0, 0, 0, 0, 0], BacktestConfig(allow_short=True))
    assert [t.side for t in only_sell.trades] == ["short"]


def test_a_signal_on_the_last_bar_is_not_filled_at_next_open() -> None:
    result = run_backtest(_bars(OPENS, CLOSES), [0, 0, 0, 0, 0, 0, 0, 1], BacktestConfig())
    assert result.trades == []


@pytest.mark.parametrize(("finalize", "price"), [("last_close", 99.0), ("last_open", 100.0)])
def test_an_open_position_is_closed_after_the_last_bar(finalize: str, price: float) -> None:
    cfg = BacktestConfig(cash=1000, commission=0.001, finalize=finalize)  # type: ignore[arg-type]
    result = run_backtest(_bars(OPENS, CLOSES), [0, 0, 0, 0, 1, 0, 0, 0], cfg)
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (7, price, "end_of_data")
    assert result.equity_curve[-1] == pytest.approx(1000 + trade.pnl)


# --- stops and targets -------------------------------------------------------------------------------


def _bracket_bars(high3: float, low3: float, open3: float = 100.0) -> Ohlcv:
    opens = [100.0, 100.0, 100.0, open3, 100.0]
    closes = [100.0, 100.0, 100.0, 100.0, 100.0]
    highs = [101.0, 101.0, 101.0, high3, 101.0]
    lows = [99.0, 99.0, 99.0, low3, 99.0]
    return _bars(opens, closes, highs, lows)


STOPS = BacktestConfig(cash=1000, stop_loss_pct=5, take_profit_pct=10)


def test_a_bar_reaching_stop_and_target_is_read_as_a_stop() -> None:
    (trade,) = run_backtest(_bracket_bars(high3=111, low3=94), [0, 1, 0, 0, 0], STOPS).trades
    assert (trade.exit_bar, trade.exit_reason, trade.exit_price) == (3, "stop_loss", 95.0)


def test_a_target_alone_fills_at_its_level_without_slippage() -> None:
    cfg = STOPS.model_copy(update={"slippage_bps": 10})
    (trade,) = run_backtest(_bracket_bars(high3=111, low3=99), [0, 1, 0, 0, 0], cfg).trades
    assert trade.exit_reason == "take_profit"
    assert trade.exit_price == pytest.approx(100 * 1.001 * 1.10)


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    (trade,) = run_backtest(_bracket_bars(high3=91, low3=89, open3=90), [0, 1, 0, 0, 0], STOPS).trades
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", 90.0)


def test_a_gap_through_the_target_fills_at_the_better_open() -> None:
    (trade,) = run_backtest(_bracket_bars(high3=121, low3=119, open3=120), [0, 1, 0, 0, 0], STOPS).trades
    assert (trade.exit_reason, trade.exit_price) == ("take_profit", 120.0)


def test_short_stops_are_above_and_targets_below() -> None:
    cfg = STOPS.model_copy(update={"allow_short": True})
    (stopped,) = run_backtest(_bracket_bars(high3=106, low3=89), [0, -1, 0, 0, 0], cfg).trades
    assert (stopped.side, stopped.exit_reason, stopped.exit_price) == ("short", "stop_loss", 105.0)
    (target,) = run_backtest(_bracket_bars(high3=101, low3=89), [0, -1, 0, 0, 0], cfg).trades
    assert (target.exit_reason, target.exit_price) == ("take_profit", 90.0)
    assert target.pnl == pytest.approx(10 * 10)


def test_stops_are_checked_in_the_fill_bar_at_open_fills_but_not_at_close_fills() -> None:
    bars = _bars([100, 100, 100, 100], [100, 100, 100, 100], [101, 101, 101, 101], [99, 99, 90, 99])
    at_open = run_backtest(bars, [0, 1, 0, 0], STOPS).trades[0]
    assert (at_open.entry_bar, at_open.exit_bar, at_open.exit_reason) == (2, 2, "stop_loss")
    at_close = run_backtest(bars, [0, 0, 1, 0], STOPS.model_copy(update={"fill": "close"})).trades[0]
    assert (at_close.entry_bar, at_close.exit_reason) == (2, "end_of_data")


# --- inputs ------------------------------------------------------------------------------------------


def test_bars_and_arrays_give_the_same_result() -> None:
    bars = load_dataset("GOOG")[:600]
    strategy = create("sma_cross", {"fast": 10, "slow": 20})
    cfg = BacktestConfig(commission=0.002, allow_short=True)
    from_bars = run_backtest(bars, strategy, cfg)
    from_arrays = run_backtest(Ohlcv.from_bars(bars), strategy, cfg)
    assert from_bars == from_arrays and from_bars.metrics.trades > 5


def test_bad_signals_and_settings_are_refused() -> None:
    bars = _bars(OPENS, CLOSES)
    with pytest.raises(ValueError, match="one signal per bar"):
        run_backtest(bars, [0, 1], BacktestConfig())
    with pytest.raises(ValueError, match="-1, 0 or"):
        run_backtest(bars, [0, 2, 0, 0, 0, 0, 0, 0], BacktestConfig())
    with pytest.raises(ValidationError, match="commission"):
        BacktestConfig(commission=-0.1)
    with pytest.raises(ValidationError, match="fill"):
        BacktestConfig(fill="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one length"):
        Ohlcv.from_arrays([1.0, 2.0], [1.0], [1.0], [1.0])


# --- metrics -----------------------------------------------------------------------------------------


def _trade(pnl: float, return_pct: float) -> Trade:
    return Trade(
        side="long",
        size=1,
        entry_bar=0,
        exit_bar=1,
        entry_time=None,
        exit_time=None,
        entry_price=1,
        exit_price=1,
        commission=0,
        pnl=pnl,
        return_pct=return_pct,
        bars_held=1,
        exit_reason="signal",
    )


def test_metrics_of_a_known_equity_curve() -> None:
    equity = np.array([100.0, 110.0, 99.0, 99.0, 121.0])
    close = np.array([10.0, 11.0, 12.0, 13.0, 15.0])
    trades = [_trade(30, 30.0), _trade(-10, -10.0), _trade(5, 5.0), _trade(-5, -5.0)]
    exposed = np.array([True, True, False, False, True])
    m = compute_metrics(equity, close, trades, exposed, periods_per_year=4)
    r = np.array([0.1, -0.1, 0.0, 121 / 99 - 1])
    assert m.total_return_pct == pytest.approx(21.0)
    assert m.cagr_pct == pytest.approx(21.0)  # four returns at four periods a year: exactly one year
    assert m.volatility_pct == pytest.approx(r.std(ddof=1) * 2 * 100)
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * 2)
    assert m.sortino == pytest.approx(r.mean() * 4 / (math.sqrt(0.01 / 4) * 2))
    assert m.max_drawdown_pct == pytest.approx(-10.0)
    assert m.max_drawdown_duration_bars == 2
    assert m.calmar == pytest.approx(21.0 / 10.0)
    assert m.win_rate_pct == 50.0 and m.trades == 4
    assert m.profit_factor == pytest.approx(35 / 15)
    assert m.expectancy_pct == pytest.approx(5.0)
    assert (m.avg_win_pct, m.avg_loss_pct) == (pytest.approx(17.5), pytest.approx(-7.5))
    assert (m.best_trade_pct, m.worst_trade_pct) == (30.0, -10.0)
    assert m.exposure_pct == 60.0 and m.buy_hold_return_pct == pytest.approx(50.0)
    assert m.final_equity == 121.0 and m.bars == 5


def test_metrics_without_trades_or_losses_are_none_not_infinite() -> None:
    flat = compute_metrics(np.full(4, 100.0), np.ones(4), [], np.zeros(4, dtype=bool), 252)
    assert flat.total_return_pct == 0 and flat.max_drawdown_pct == 0 and flat.max_drawdown_duration_bars == 0
    assert flat.sharpe is None and flat.sortino is None and flat.calmar is None
    assert flat.win_rate_pct is None and flat.profit_factor is None and flat.trades == 0
    winners = compute_metrics(np.array([1.0, 2.0]), np.ones(2), [_trade(1, 1.0)], np.ones(2, dtype=bool), 252)
    assert winners.profit_factor is None and winners.win_rate_pct == 100.0 and winners.avg_loss_pct is None


def test_drawdown_series_and_duration() -> None:
    equity = np.array([100.0, 120.0, 90.0, 120.0, 110.0, 100.0, 105.0])
    assert drawdown_pct(equity) == pytest.approx([0, 0, -25, 0, -100 / 12, -100 / 6, -12.5])
    assert max_drawdown_duration(equity) == 3


def test_result_serialises_to_the_cli_json_shape() -> None:
    result = run_backtest(_bars(OPENS, CLOSES), [0, 1, 0, -1, 0, 0, 0, 0], BacktestConfig(cash=1000))
    data = result.model_dump(mode="json")
    assert {
        "total_return_pct",
        "cagr_pct",
        "volatility_pct",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown_pct",
        "win_rate_pct",
        "profit_factor",
        "expectancy_pct",
        "trades",
        "exposure_pct",
        "buy_hold_return_pct",
    } <= set(data["metrics"])
    assert data["trades"][0]["entry_time"].startswith("2024-01-03T00:00:00")
    assert len(data["equity_curve"]) == 8
