"""The backtest engine: a strategy's signals replayed through fills, costs, sizing and exits.

`run_backtest` trades one symbol; `run_portfolio` trades several from one cash balance. Both follow
the run's `TradePlan` (`BacktestConfig.resolve_plan`: the config's settings, or the strategy's own plan
where the config left a default) and never hold more than one position per symbol.

Order of events within bar i of a symbol:
1. A position held `max_holding_bars` bars (since its entry bar) is closed at bar i's open.
2. (`next_open`) the signal of bar i-1 is filled at bar i's open: an opposite position is closed
   first, then a new one opened if the plan's side allows it; a signal in the held direction does
   nothing.
3. Exits of the open position are checked against bar i's range: a bar opening beyond the stop (the
   fixed stop or the trailing stop, whichever is tighter) or the target fills at the open; else, if
   the stop and the target both lie in the range, the stop is assumed hit first (conservative: the
   path inside a bar is unknown). Then the trailing stop moves up to the bar's extreme: a trailing
   stop is never hit by the bar whose high (low, for a short) raised it.
4. The signal of bar i (taken at its close) is queued for bar i+1 (`next_open`) or filled at bar i's
   close (`close`; exits of step 3 then start with the next bar).
5. Equity is marked at bar i's close: cash plus the positions' values.
After the last bar, a position still open is closed as `BacktestConfig.finalize` says.

Entries are sized by the plan's `SizingRule` from the equity at the fill (cash plus the other
positions at their last close), never beyond the cash available (a short is held against cash, 1x).
ATR-based stops and `atr_risk` sizing use ATR(atr_period) at the signal bar; a signal before the ATR
exists opens nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.data import Ohlcv
from tradeflow.backtest.metrics import compute_metrics, drawdown_pct
from tradeflow.backtest.results import BacktestResult, ExitReason, Trade
from tradeflow.domain import Bar, SizingMethod
from tradeflow.strategies.base import Strategy
from tradeflow.strategies.plan import ExitLevels, TradePlan

Data = Sequence[Bar] | Ohlcv
NO_EXITS = ExitLevels(1, math.nan, math.nan, 0.0, math.nan)


def run_backtest(
    data: Data, strategy: Strategy | npt.ArrayLike, config: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest `strategy` (or a ready array of per-bar signals: +1 buy, -1 sell, 0 hold) over `data`."""
    cfg = config or BacktestConfig()
    bars = _ohlcv(data)
    plan = cfg.resolve_plan(strategy.plan if isinstance(strategy, Strategy) else None)
    signals = _signals(bars, strategy)
    account = _Account(cfg.cash)
    book = _Book(bars, cfg, plan, account, signals)
    n = len(bars)
    # Only some bars can change anything: a signal's, the bar after it (a next-open fill), and every bar
    # of a position with exits to check. The others are skipped; cash and holding carry over to them.
    events = [*np.flatnonzero(signals).tolist(), n]
    stepped: list[int] = []
    cash: list[float] = []
    held: list[float] = []
    e, i = 0, 0
    while i < n:
        book.step(i)
        stepped.append(i)
        cash.append(account.cash)
        held.append(book.side * book.units)
        if book.pending or (book.side and book.watch):
            i += 1
            continue
        while events[e] <= i:
            e += 1
        i = events[e]
    book.finish()
    lengths = np.diff(np.asarray([*stepped, n]))
    equity = np.repeat(cash, lengths) + np.repeat(held, lengths) * bars.close
    equity[-1] = account.cash
    exposed = np.zeros(len(bars), dtype=bool)
    for t in book.trades:
        exposed[t.entry_bar : t.exit_bar + 1] = True
    drawdown = drawdown_pct(equity)
    metrics = compute_metrics(equity, bars.close, book.trades, exposed, periods_per_year(bars, cfg), drawdown)
    return BacktestResult(
        config=cfg,
        metrics=metrics,
        trades=book.trades,
        equity_curve=equity,
        drawdown_pct=drawdown,
        timestamps=list(bars.ts) if bars.ts is not None else None,
    )


def run_portfolio(
    data: Mapping[str, Data], strategy: Strategy | Mapping[str, npt.ArrayLike], config: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest one strategy over several symbols sharing one cash balance.

    Every symbol's bars need times; the run's timeline is the union of them, and at each time the
    symbols that have a bar there are stepped in the order given. Equity, drawdown and the metrics are
    the portfolio's; `buy_hold_return_pct` is the equal-weighted mean of the symbols' buy-and-hold
    returns; trades carry their symbol, and bar indexes on the timeline.
    """
    cfg = config or BacktestConfig()
    if not data:
        raise ValueError("a portfolio needs at least one symbol")
    series = {symbol: _ohlcv(d, symbol) for symbol, d in data.items()}
    if any(b.ts is None for b in series.values()):
        raise ValueError("portfolio backtests need bar times for every symbol")
    timeline = sorted({t for b in series.values() for t in (b.ts or ())})
    position = {t: k for k, t in enumerate(timeline)}
    plan = cfg.resolve_plan(strategy.plan if isinstance(strategy, Strategy) else None)
    account = _Account(cfg.cash)
    books: list[_Book] = []
    steps: list[list[tuple[_Book, int]]] = [[] for _ in timeline]
    for symbol, bars in series.items():
        chosen = strategy if isinstance(strategy, Strategy) else strategy[symbol]
        book = _Book(bars, cfg, plan, account, _signals(bars, chosen), symbol=symbol)
        books.append(book)
        for i, t in enumerate(bars.ts or ()):
            steps[position[t]].append((book, i))
    for book in books:
        book.others = [b for b in books if b is not book]
    equity = np.empty(len(timeline))
    for k, due in enumerate(steps):
        for book, i in due:
            book.step(i)
        equity[k] = account.cash + sum(b.marked() for b in books)
    for book in books:
        book.finish()
    equity[-1] = account.cash + sum(b.marked() for b in books)

    trades: list[Trade] = []
    exposed = np.zeros(len(timeline), dtype=bool)
    for book in books:
        ts = book.bars.ts or ()
        for trade in book.trades:
            entry, exit = position[ts[trade.entry_bar]], position[ts[trade.exit_bar]]
            trades.append(trade.model_copy(update={"entry_bar": entry, "exit_bar": exit, "bars_held": exit - entry}))
            exposed[entry : exit + 1] = True
    trades.sort(key=lambda t: (t.entry_bar, t.exit_bar))
    buy_hold = float(np.mean([b.close[-1] / b.close[0] - 1.0 for b in series.values()]) * 100.0)
    index = np.linspace(1.0, 1.0 + buy_hold / 100.0, 2)  # compute_metrics reads only its ends
    ppy = cfg.periods_per_year or _per_year(timeline)
    drawdown = drawdown_pct(equity)
    metrics = compute_metrics(equity, index, trades, exposed, ppy, drawdown)
    return BacktestResult(
        config=cfg,
        metrics=metrics,
        trades=trades,
        equity_curve=equity,
        drawdown_pct=drawdown,
        timestamps=timeline,
        symbols=list(series),
    )


def periods_per_year(bars: Ohlcv, config: BacktestConfig) -> float:
    if config.periods_per_year is not None:
        return config.periods_per_year
    return _per_year(bars.ts)


def _per_year(ts: Sequence[datetime] | None) -> float:
    """Bars per 365.25 days, from the bar times; 252 without times."""
    if ts is None or len(ts) < 2:
        return 252.0
    span_days = (ts[-1] - ts[0]).total_seconds() / 86_400
    return (len(ts) - 1) / span_days * 365.25 if span_days > 0 else 252.0


def _ohlcv(data: Data, symbol: str | None = None) -> Ohlcv:
    bars = data if isinstance(data, Ohlcv) else Ohlcv.from_bars(data)
    if symbol is not None and bars.symbol != symbol:
        bars = Ohlcv(bars.open, bars.high, bars.low, bars.close, bars.volume, bars.ts, symbol)
    return bars


def _signals(bars: Ohlcv, strategy: Strategy | npt.ArrayLike) -> npt.NDArray[np.int8]:
    if isinstance(strategy, Strategy):
        signals = strategy.signals(
            bars.open, bars.high, bars.low, bars.close, bars.volume, ts=bars.ts, symbol=bars.symbol
        )
    else:
        signals = np.asarray(strategy)
    if signals.shape != (len(bars),):
        raise ValueError(f"{bars.symbol}: expected one signal per bar ({len(bars)}), got shape {signals.shape}")
    if not np.isin(signals, (-1, 0, 1)).all():
        raise ValueError("signals must be -1, 0 or +1")
    return signals.astype(np.int8)


@dataclass
class _Account:
    cash: float


@dataclass
class _Book:
    """One symbol's position, its exits and its closed trades; cash lives in the shared account."""

    bars: Ohlcv
    cfg: BacktestConfig
    plan: TradePlan
    account: _Account
    signals: npt.NDArray[np.int8]
    symbol: str | None = None
    others: list[_Book] = field(default_factory=list)
    side: int = 0  # +1 long, -1 short, 0 flat
    units: float = 0.0
    entry_price: float = 0.0
    entry_bar: int = 0
    entry_commission: float = 0.0
    levels: ExitLevels = NO_EXITS  # set at each entry
    best: float = math.nan  # best price since entry, for the trailing stop
    last_close: float = 0.0
    pending: int = 0
    trades: list[Trade] = field(default_factory=list)

    def __post_init__(self) -> None:
        plan, b = self.plan, self.bars
        self.slip = self.cfg.slippage_bps / 10_000
        self.at_open = self.cfg.fill == "next_open"
        self.can_open = {1: plan.side != "short", -1: plan.side != "long"}
        self.exits = any(r is not None for r in (plan.stop_loss, plan.take_profit, plan.trailing_stop))
        self.max_hold = plan.max_holding_bars
        self.watch = self.exits or self.max_hold is not None  # an open position needs every bar
        # Bars are read one at a time: Python lists are fastest when most bars are (a position with exits
        # steps every bar), the arrays themselves when only a few are (signal bars and the fills after).
        dense = self.watch
        self.opens: list[float] | npt.NDArray[np.float64] = b.open.tolist() if dense else b.open
        self.closes: list[float] | npt.NDArray[np.float64] = b.close.tolist() if dense else b.close
        self.codes: list[int] | npt.NDArray[np.int8] = self.signals.tolist() if dense else self.signals
        self.last = len(b.close) - 1
        self.highs: list[float] = b.high.tolist() if self.exits else []
        self.lows: list[float] = b.low.tolist() if self.exits else []
        self.uses_atr = plan.uses_atr
        self.atr: list[float] = []
        if self.uses_atr:
            from tradeflow.indicators import atr_series

            self.atr = atr_series(b.high, b.low, b.close, plan.atr_period).tolist()
        sizing = plan.sizing
        self.fractional = self.cfg.fractional or (sizing is not None and sizing.fractional)
        # the sizing rule as floats, read once: entries are the engine's hot path on long series
        self.commission = self.cfg.commission
        self.method = sizing.method if sizing is not None else SizingMethod.PERCENT_OF_EQUITY
        self.size = float(
            {
                SizingMethod.PERCENT_OF_EQUITY: sizing.percent if sizing else 100,
                SizingMethod.FIXED_QUANTITY: sizing.quantity if sizing else 0,
                SizingMethod.ATR_RISK: sizing.risk_fraction if sizing else 0,
            }[self.method]
            or 0
        )
        self.atr_multiple = float(sizing.atr_multiple) if sizing is not None else 0.0

    def marked(self) -> float:
        return self.side * self.units * self.last_close

    # --- fills ----------------------------------------------------------------------------------------

    def _units(self, price: float, signal_bar: int) -> float:
        """Units an entry at `price` buys: the sizing rule's, capped by the cash, rounded down."""
        cash, method = self.account.cash, self.method
        unit_cost = price * (1 + self.commission)
        equity = cash + sum(b.marked() for b in self.others) if self.others else cash
        if method is SizingMethod.PERCENT_OF_EQUITY:
            budget = min(equity * self.size / 100, cash)
            return budget / unit_cost if self.fractional else float(budget // unit_cost)
        affordable = cash / unit_cost
        if method is SizingMethod.FIXED_QUANTITY:
            units = self.size if self.size <= affordable else 0.0  # the order would be refused, not shrunk
        else:
            units = min(equity * self.size / (self.atr[signal_bar] * self.atr_multiple), affordable)
        return units if self.fractional else float(math.floor(units))

    def _open(self, direction: int, raw_price: float, i: int, signal_bar: int) -> None:
        price = raw_price * (1 + direction * self.slip)
        atr = self.atr[signal_bar] if self.atr else math.nan
        if self.uses_atr and not atr > 0:
            return  # ATR-based exits or sizing need an ATR: none before its warm-up
        units = self._units(price, signal_bar)
        if units <= 0:
            return  # not enough cash for one unit: the entry is skipped
        commission = self.commission * units * price
        self.account.cash -= direction * units * price + commission
        self.side, self.units, self.entry_price, self.entry_bar = direction, units, price, i
        self.entry_commission = commission
        self.levels = ExitLevels.at_entry(self.plan, direction, price, atr)
        self.best = price

    def _close(self, raw_price: float, i: int, reason: ExitReason, slipped: bool = True) -> None:
        d = self.side
        price = raw_price * (1 - d * self.slip) if slipped else raw_price
        commission = self.commission * self.units * price
        self.account.cash += d * self.units * price - commission
        pnl = d * self.units * (price - self.entry_price) - self.entry_commission - commission
        ts = self.bars.ts
        self.trades.append(
            Trade(
                side="long" if d > 0 else "short",
                size=self.units,
                entry_bar=self.entry_bar,
                exit_bar=i,
                entry_time=ts[self.entry_bar] if ts is not None else None,
                exit_time=ts[i] if ts is not None else None,
                entry_price=self.entry_price,
                exit_price=price,
                commission=self.entry_commission + commission,
                pnl=pnl,
                return_pct=pnl / (self.units * self.entry_price) * 100,
                bars_held=i - self.entry_bar,
                exit_reason=reason,
                symbol=self.symbol,
            )
        )
        self.side, self.units = 0, 0.0

    def _act(self, signal: int, price: float, i: int, signal_bar: int) -> None:
        if self.side == -signal:
            self._close(price, i, "signal")
        if self.side == 0 and self.can_open[signal]:
            self._open(signal, price, i, signal_bar)

    def _check_exits(self, i: int) -> None:
        d = self.side
        o, hi, lo = float(self.opens[i]), self.highs[i], self.lows[i]
        levels = self.levels
        stop, use_trail = levels.stop_level(self.best)  # NaN levels never compare true
        reason: ExitReason = "trailing_stop" if use_trail else "stop_loss"
        target = levels.target
        if d > 0:
            stop_gap, target_gap, stop_hit, target_hit = o <= stop, o >= target, lo <= stop, hi >= target
        else:
            stop_gap, target_gap, stop_hit, target_hit = o >= stop, o <= target, hi >= stop, lo <= target
        if stop_gap:
            self._close(o, i, reason)
        elif target_gap:
            self._close(o, i, "take_profit", slipped=False)
        elif stop_hit:
            self._close(stop, i, reason)
        elif target_hit:
            self._close(target, i, "take_profit", slipped=False)
        elif d > 0:
            self.best = max(self.best, hi)
        else:
            self.best = min(self.best, lo)

    # --- one bar ---------------------------------------------------------------------------------------

    def step(self, i: int) -> None:
        if self.side and self.max_hold is not None and i - self.entry_bar >= self.max_hold:
            self._close(float(self.opens[i]), i, "max_holding")
        if self.pending:
            self._act(self.pending, float(self.opens[i]), i, i - 1)
            self.pending = 0
        if self.exits and self.side and (self.at_open or i > self.entry_bar):
            self._check_exits(i)
        s = int(self.codes[i])
        if s and s != self.side:
            if not self.at_open:
                self._act(s, float(self.closes[i]), i, i)
            elif i < self.last:
                self.pending = s
        self.last_close = float(self.closes[i])

    def finish(self) -> None:
        if self.side:
            last = self.closes[-1] if self.cfg.finalize == "last_close" else self.opens[-1]
            self._close(float(last), self.last, "end_of_data")
