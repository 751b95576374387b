"""The backtester following a trade plan: sides, sizing rules, ATR and trailing stops, maximum holding
time, the precedence of a strategy's plan and the run's settings, and the portfolio mode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from tradeflow.backtest import BacktestConfig, Ohlcv, run_backtest
from tradeflow.backtest.engine import run_portfolio
from tradeflow.domain import Bar, SignalAction, SizingMethod, SizingRule
from tradeflow.indicators import atr_series
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Decision, Strategy, create
from tradeflow.strategies.plan import ExitDistance, TradePlan

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bars(
    opens: Sequence[float],
    closes: Sequence[float],
    highs: Sequence[float] | None = None,
    lows: Sequence[float] | None = None,
    start: int = 0,
    symbol: str = "TEST",
) -> Ohlcv:
    o, c = np.array(opens, dtype=float), np.array(closes, dtype=float)
    h = np.array(highs, dtype=float) if highs is not None else np.maximum(o, c) + 1
    lo = np.array(lows, dtype=float) if lows is not None else np.minimum(o, c) - 1
    ts = [T0 + timedelta(days=start + i) for i in range(len(c))]
    return Ohlcv.from_arrays(o, h, lo, c, ts=ts, symbol=symbol)


class _NoParams(BaseModel):
    pass


class _Planned(Strategy):
    """Replays fixed signals under a given plan: what a rule spec with that plan would do."""

    name = "planned"
    Params = _NoParams

    def __init__(self, signals: Sequence[int], plan: TradePlan) -> None:
        super().__init__(_NoParams())
        self._signals, self._plan = np.array(signals, dtype=np.int8), plan

    @property
    def warmup(self) -> int:
        return 1

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        return Decision(action=SignalAction.HOLD)

    @property
    def plan(self) -> TradePlan:
        return self._plan

    def signals(self, *columns: object, **options: object) -> np.ndarray:
        return self._signals


FLAT = [100.0] * 10


# --- trailing stop -----------------------------------------------------------------------------------


def test_a_trailing_stop_follows_the_highest_high_and_exits_at_its_level() -> None:
    # entry at bar 1's open (100); highs rise to 110 at bar 3; bar 4's low 103 crosses 110 * 0.95 = 104.5
    highs = [101, 102, 106, 110, 106, 101, 101, 101, 101, 101]
    lows = [99, 99, 101, 105, 103, 99, 99, 99, 99, 99]
    opens = [100, 100, 103, 107, 106, 100, 100, 100, 100, 100]
    bars = _bars(opens, opens, highs, lows)
    result = run_backtest(bars, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], BacktestConfig(cash=1000, trailing_stop_pct=5))
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (4, "trailing_stop")
    assert trade.exit_price == pytest.approx(110 * 0.95)


def test_the_bar_that_raises_a_trailing_stop_never_triggers_it() -> None:
    # bar 2 reaches 120 and dips to 112: the path inside the bar is unknown, so the 114 level set by its
    # own high does not fire in it; the next bar (low 113) does
    highs = [101, 101, 120, 116, 101, 101, 101, 101, 101, 101]
    lows = [99, 99, 112, 113, 99, 99, 99, 99, 99, 99]
    opens = [100, 100, 113, 115, 100, 100, 100, 100, 100, 100]
    result = run_backtest(
        _bars(opens, opens, highs, lows), [1] + [0] * 9, BacktestConfig(cash=1000, trailing_stop_pct=5)
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (3, "trailing_stop")
    assert trade.exit_price == pytest.approx(114.0)


def test_the_tighter_of_the_fixed_and_trailing_stop_binds_and_names_the_exit() -> None:
    highs = [101, 101, 101, 101, 101, 101, 101, 101, 101, 101]
    lows = [99, 99, 99, 90, 99, 99, 99, 99, 99, 99]
    cfg = BacktestConfig(cash=1000, stop_loss_pct=2, trailing_stop_pct=5)
    (trade,) = run_backtest(_bars(FLAT, FLAT, highs, lows), [1] + [0] * 9, cfg).trades
    assert trade.exit_reason == "stop_loss" and trade.exit_price == pytest.approx(98.0)  # fixed 98 > trail 96
    cfg = BacktestConfig(cash=1000, stop_loss_pct=10, trailing_stop_pct=5)
    (trade,) = run_backtest(_bars(FLAT, FLAT, highs, lows), [1] + [0] * 9, cfg).trades
    assert trade.exit_reason == "trailing_stop" and trade.exit_price == pytest.approx(101 * 0.95)


def test_a_short_trailing_stop_follows_the_lowest_low() -> None:
    highs = [101, 101, 96, 92, 97, 101, 101, 101, 101, 101]
    lows = [99, 99, 94, 90, 93, 99, 99, 99, 99, 99]
    opens = [100, 100, 95, 91, 94, 100, 100, 100, 100, 100]
    cfg = BacktestConfig(cash=1000, allow_short=True, trailing_stop_pct=5)
    (trade,) = run_backtest(_bars(opens, opens, highs, lows), [-1] + [0] * 9, cfg).trades
    assert (trade.side, trade.exit_bar, trade.exit_reason) == ("short", 4, "trailing_stop")
    assert trade.exit_price == pytest.approx(90 * 1.05)


# --- maximum holding time -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fill", "entry_bar", "exit_bar"), [("next_open", 2, 5), ("close", 1, 4)])
def test_max_holding_closes_at_the_open_that_many_bars_after_entry(fill: str, entry_bar: int, exit_bar: int) -> None:
    opens = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]
    closes = [o + 0.5 for o in opens]
    cfg = BacktestConfig.model_validate({"cash": 1000, "max_holding_bars": 3, "fill": fill})
    (trade,) = run_backtest(_bars(opens, closes), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], cfg).trades
    assert (trade.entry_bar, trade.exit_bar, trade.bars_held, trade.exit_reason) == (
        entry_bar,
        exit_bar,
        3,
        "max_holding",
    )
    assert trade.exit_price == opens[exit_bar]


def test_a_later_signal_reopens_after_a_max_holding_exit() -> None:
    signals = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    result = run_backtest(_bars(FLAT, FLAT), signals, BacktestConfig(cash=1000, max_holding_bars=2))
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in result.trades] == [
        (1, 3, "max_holding"),
        (5, 7, "max_holding"),
    ]


# --- sides ----------------------------------------------------------------------------------------------


def test_a_short_only_plan_opens_on_sell_and_covers_on_buy() -> None:
    opens = [100, 100, 98, 96, 95, 97, 99, 100, 100, 100]
    signals = [1, 0, -1, 0, 1, 0, 1, -1, 0, 0]  # the leading and late BUYs find nothing to cover
    strategy = _Planned(signals, TradePlan(side="short"))
    result = run_backtest(_bars(opens, opens), strategy, BacktestConfig(cash=1000))
    assert [(t.side, t.entry_bar, t.exit_bar) for t in result.trades] == [("short", 3, 5), ("short", 8, 9)]
    assert result.trades[0].pnl == pytest.approx((96 - 97) * (1000 // 96))


def test_an_explicit_allow_short_overrides_a_long_plan_but_a_default_does_not() -> None:
    signals = [0, 1, 0, -1, 0, 0, 0, 0, 0, 0]
    strategy = _Planned(signals, TradePlan(side="long"))
    assert [t.side for t in run_backtest(_bars(FLAT, FLAT), strategy).trades] == ["long"]
    both = run_backtest(_bars(FLAT, FLAT), strategy, BacktestConfig(allow_short=True))
    assert [t.side for t in both.trades] == ["long", "short"]


# --- sizing -------------------------------------------------------------------------------------------


def _atr_bars() -> Ohlcv:
    opens = [100.0 + (i % 3) for i in range(40)]
    closes = [100.5 + (i % 4) for i in range(40)]
    return _bars(opens, closes)


def test_atr_risk_sizing_risks_the_fraction_over_the_atr_stop_and_the_stop_sits_there() -> None:
    bars = _atr_bars()
    atr = atr_series(bars.high, bars.low, bars.close, 14)
    plan = TradePlan(
        sizing=SizingRule(method=SizingMethod.ATR_RISK, risk_fraction=Decimal("0.01"), atr_multiple=Decimal(2)),
        stop_loss=ExitDistance(atr=2),
    )
    signals = [0] * 40
    signals[5], signals[20] = 1, 1  # the first comes before the ATR exists: skipped
    result = run_backtest(bars, _Planned(signals, plan), BacktestConfig(cash=100_000))
    trade = result.trades[0]
    assert trade.entry_bar == 21
    assert trade.size == float(int(100_000 * 0.01 / (atr[20] * 2)))
    if trade.exit_reason == "stop_loss":
        assert trade.exit_price == pytest.approx(trade.entry_price - 2 * atr[20])
    assert np.isnan(atr[5])


def test_fixed_quantity_sizing_and_an_unaffordable_order_is_skipped() -> None:
    signals = [0, 1, 0, -1, 0, 1, 0, 0, 0, 0]
    fixed = TradePlan(sizing=SizingRule(method=SizingMethod.FIXED_QUANTITY, quantity=Decimal(3)))
    trades = run_backtest(_bars(FLAT, FLAT), _Planned(signals, fixed), BacktestConfig(cash=1000)).trades
    assert [t.size for t in trades] == [3.0, 3.0]
    too_many = TradePlan(sizing=SizingRule(method=SizingMethod.FIXED_QUANTITY, quantity=Decimal(11)))
    assert run_backtest(_bars(FLAT, FLAT), _Planned(signals, too_many), BacktestConfig(cash=1000)).trades == []


def test_a_percent_sizing_in_the_plan_replaces_the_default_but_not_an_explicit_size() -> None:
    plan = TradePlan(sizing=SizingRule(percent=Decimal(50)))
    signals = [0, 1, 0, -1, 0, 0, 0, 0, 0, 0]
    (trade,) = run_backtest(_bars(FLAT, FLAT), _Planned(signals, plan), BacktestConfig(cash=1000)).trades
    assert trade.size == 5.0
    (trade,) = run_backtest(_bars(FLAT, FLAT), _Planned(signals, plan), BacktestConfig(cash=1000, size_pct=20)).trades
    assert trade.size == 2.0


def test_resolve_plan_merges_settings_and_plan_field_by_field() -> None:
    plan = TradePlan(side="short", stop_loss=ExitDistance(atr=3), max_holding_bars=7)
    merged = BacktestConfig(take_profit_pct=4, max_holding_bars=2).resolve_plan(plan)
    assert merged.side == "short" and merged.stop_loss == ExitDistance(atr=3)
    assert merged.take_profit == ExitDistance(percent=4) and merged.max_holding_bars == 2
    assert merged.sizing == SizingRule(percent=Decimal(100))
    assert BacktestConfig().resolve_plan() == TradePlan(sizing=SizingRule(percent=Decimal(100)))


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"stop_loss": {"percent": 5, "atr": 2}}, "stop_loss"),
        ({"stop_loss": {}}, "stop_loss"),
        ({"trailing_stop": {"percent": 100}}, "trailing_stop"),
        ({"side": "sideways"}, "side"),
        ({"max_holding_bars": 0}, "max_holding_bars"),
    ],
)
def test_an_invalid_plan_names_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TradePlan.model_validate(document)
    assert field in str(caught.value)


# --- portfolio ------------------------------------------------------------------------------------------


def test_one_symbol_as_a_portfolio_is_the_single_symbol_backtest() -> None:
    bars = Ohlcv.from_bars(load_dataset("GOOG"))
    strategy = create("sma_cross", {"fast": 10, "slow": 30})
    cfg = BacktestConfig(commission=0.001, stop_loss_pct=8, trailing_stop_pct=12)
    single, portfolio = run_backtest(bars, strategy, cfg), run_portfolio({"GOOG": bars}, strategy, cfg)
    assert [t.model_dump(exclude={"symbol"}) for t in portfolio.trades] == [
        t.model_dump(exclude={"symbol"}) for t in single.trades
    ]
    assert portfolio.equity_curve == pytest.approx(single.equity_curve, rel=1e-12)
    assert portfolio.metrics.total_return_pct == pytest.approx(single.metrics.total_return_pct)
    assert {t.symbol for t in portfolio.trades} == {"GOOG"} and portfolio.symbols == ["GOOG"]
    assert {t.exit_reason for t in single.trades} >= {"signal", "trailing_stop"}


def test_symbols_share_one_cash_balance_sized_from_portfolio_equity() -> None:
    a = _bars([100.0] * 6, [100.0, 100, 110, 110, 110, 110], symbol="A")
    b = _bars([50.0] * 6, [50.0] * 6, symbol="B")
    signals = {"A": [1, 0, 0, 0, 0, 0], "B": [0, 0, 1, 0, 0, 0]}
    result = run_portfolio({"A": a, "B": b}, signals, BacktestConfig(cash=1000, size_pct=50))
    first, second = result.trades
    assert (first.symbol, first.size) == ("A", 5.0)  # 50 % of 1000 at 100
    # at B's entry (bar 3) the portfolio is worth 500 cash + 5 x 110 = 1050: half is 525, 10 units at 50
    assert (second.symbol, second.size, second.entry_bar) == ("B", 10.0, 3)
    assert result.equity_curve == pytest.approx([1000, 1000, 1050, 1050, 1050, 1050])
    assert result.metrics.buy_hold_return_pct == pytest.approx((10 + 0) / 2)


def test_cash_never_goes_negative_when_symbols_want_more_than_there_is() -> None:
    a, b = _bars(FLAT, FLAT, symbol="A"), _bars(FLAT, FLAT, symbol="B")
    signals = {"A": [1] + [0] * 9, "B": [1] + [0] * 9}
    result = run_portfolio({"A": a, "B": b}, signals, BacktestConfig(cash=1000, size_pct=80))
    sizes = {t.symbol: t.size for t in result.trades}
    assert sizes == {"A": 8.0, "B": 2.0}  # B gets what cash is left, not 80 % of equity


def test_the_timeline_is_the_union_of_the_symbols_times() -> None:
    a = _bars([100.0] * 4, [100.0, 101, 102, 103], symbol="A")
    b = _bars([10.0] * 4, [10.0, 11, 12, 13], start=2, symbol="B")  # starts two days later
    result = run_portfolio({"A": a, "B": b}, {"A": [0] * 4, "B": [1, 0, 0, 0]}, BacktestConfig(cash=100))
    assert result.timestamps == [T0 + timedelta(days=d) for d in range(6)]
    (trade,) = result.trades
    assert (trade.symbol, trade.entry_bar, trade.exit_bar) == ("B", 3, 5)
    assert len(result.equity_curve) == 6


def test_portfolio_of_real_datasets_trades_each_symbol() -> None:
    data = {s: load_dataset(s)[-800:] for s in ("GOOG", "SPY")}
    result = run_portfolio(data, create("sma_cross", {"fast": 10, "slow": 30}), BacktestConfig(size_pct=50))
    assert {t.symbol for t in result.trades} == {"GOOG", "SPY"}
    assert min(result.equity_curve) > 0 and result.metrics.trades == len(result.trades)


def test_a_portfolio_needs_times_and_symbols() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        run_portfolio({}, create("sma_cross"))
    no_times = Ohlcv.from_arrays(np.ones(5), np.ones(5), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="bar times"):
        run_portfolio({"X": no_times}, {"X": [0] * 5})
