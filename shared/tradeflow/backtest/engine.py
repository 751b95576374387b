"""The backtest engine: one symbol, one position at a time, signals filled per `BacktestConfig`.

Order of events within bar i:
1. (`next_open`) the signal of bar i-1 is filled at bar i's open: an opposite position is closed
   first, then a new one opened if the side is allowed; a signal in the held direction does nothing.
2. Stop-loss / take-profit of the open position are checked against bar i's range (see the config).
3. The signal of bar i (taken at its close) is queued for bar i+1 (`next_open`) or filled at bar i's
   close (`close`; then step 2 of bar i only concerns positions opened before bar i).
4. Equity is marked at bar i's close: cash plus the position's value.
After the last bar, a position still open is closed as `BacktestConfig.finalize` says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.data import Ohlcv
from tradeflow.backtest.metrics import compute_metrics, drawdown_pct
from tradeflow.backtest.results import BacktestResult, Trade
from tradeflow.domain import Bar
from tradeflow.strategies.base import Strategy

ExitReason = Literal["signal", "stop_loss", "take_profit", "end_of_data"]


def run_backtest(
    data: Sequence[Bar] | Ohlcv,
    strategy: Strategy | npt.ArrayLike,
    config: BacktestConfig | None = None,
) -> BacktestResult:
    """Backtest `strategy` (or a ready array of per-bar signals: +1 buy, -1 sell, 0 hold) over `data`."""
    cfg = config or BacktestConfig()
    bars = data if isinstance(data, Ohlcv) else Ohlcv.from_bars(data)
    if isinstance(strategy, Strategy):
        signals = strategy.signals(
            bars.open, bars.high, bars.low, bars.close, bars.volume, ts=bars.ts, symbol=bars.symbol
        )
    else:
        signals = np.asarray(strategy)
    if signals.shape != (len(bars),):
        raise ValueError(f"expected one signal per bar ({len(bars)}), got shape {signals.shape}")
    if not np.isin(signals, (-1, 0, 1)).all():
        raise ValueError("signals must be -1, 0 or +1")
    sim = _Simulation(bars, cfg)
    sim.run(signals.astype(np.int8))
    return sim.result()


def periods_per_year(bars: Ohlcv, config: BacktestConfig) -> float:
    if config.periods_per_year is not None:
        return config.periods_per_year
    if bars.ts is None or len(bars) < 2:
        return 252.0
    span_days = (bars.ts[-1] - bars.ts[0]).total_seconds() / 86_400
    return (len(bars) - 1) / span_days * 365.25 if span_days > 0 else 252.0


@dataclass
class _Simulation:
    bars: Ohlcv
    cfg: BacktestConfig
    cash: float = 0.0
    side: int = 0  # +1 long, -1 short, 0 flat
    units: float = 0.0
    entry_price: float = 0.0
    entry_bar: int = 0
    entry_commission: float = 0.0
    stop: float = math.nan
    target: float = math.nan
    trades: list[Trade] = field(default_factory=list)
    equity: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.cash = self.cfg.cash
        self.slip = self.cfg.slippage_bps / 10_000
        self.equity = np.zeros(len(self.bars))

    # --- fills ----------------------------------------------------------------------------------------

    def _open(self, direction: int, raw_price: float, i: int) -> None:
        cfg = self.cfg
        price = raw_price * (1 + direction * self.slip)
        budget = self.cash * cfg.size_pct / 100
        unit_cost = price * (1 + cfg.commission)
        units = budget / unit_cost if cfg.fractional else float(budget // unit_cost)
        if units <= 0:
            return  # not enough cash for one unit: the entry is skipped
        commission = cfg.commission * units * price
        self.cash -= direction * units * price + commission
        self.side, self.units, self.entry_price, self.entry_bar = direction, units, price, i
        self.entry_commission = commission
        sl, tp = cfg.stop_loss_pct, cfg.take_profit_pct
        self.stop = price * (1 - direction * sl / 100) if sl is not None else math.nan
        self.target = price * (1 + direction * tp / 100) if tp is not None else math.nan

    def _close(self, raw_price: float, i: int, reason: ExitReason, slipped: bool = True) -> None:
        d = self.side
        price = raw_price * (1 - d * self.slip) if slipped else raw_price
        commission = self.cfg.commission * self.units * price
        self.cash += d * self.units * price - commission
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
            )
        )
        self.side, self.units = 0, 0.0

    def _act(self, signal: int, price: float, i: int) -> None:
        if self.side == -signal:
            self._close(price, i, "signal")
        if self.side == 0 and (signal > 0 or self.cfg.allow_short):
            self._open(signal, price, i)

    def _check_exits(self, i: int) -> None:
        """Stop-loss first when both levels lie in the bar (conservative); a gap fills at the open."""
        b, d = self.bars, self.side
        o, hi, lo = float(b.open[i]), float(b.high[i]), float(b.low[i])
        stop, target = self.stop, self.target
        if d > 0:
            stop_gap, target_gap, stop_hit, target_hit = o <= stop, o >= target, lo <= stop, hi >= target
        else:
            stop_gap, target_gap, stop_hit, target_hit = o >= stop, o <= target, hi >= stop, lo <= target
        if stop_gap:
            self._close(o, i, "stop_loss")
        elif target_gap:
            self._close(o, i, "take_profit", slipped=False)
        elif stop_hit:
            self._close(stop, i, "stop_loss")
        elif target_hit:
            self._close(target, i, "take_profit", slipped=False)

    # --- the loop --------------------------------------------------------------------------------------

    def run(self, signals: np.ndarray) -> None:
        b, n = self.bars, len(self.bars)
        at_open = self.cfg.fill == "next_open"
        stops = self.cfg.stop_loss_pct is not None or self.cfg.take_profit_pct is not None
        opens, closes = b.open.tolist(), b.close.tolist()
        sig = signals.tolist()
        pending = 0
        for i in range(n):
            if pending:
                self._act(pending, opens[i], i)
                pending = 0
            if stops and self.side and (at_open or i > self.entry_bar):
                self._check_exits(i)
            s = sig[i]
            if s and s != self.side:
                if not at_open:
                    self._act(s, closes[i], i)
                elif i < n - 1:
                    pending = s
            self.equity[i] = self.cash + self.side * self.units * closes[i]
        if self.side:
            last = closes[-1] if self.cfg.finalize == "last_close" else opens[-1]
            self._close(last, n - 1, "end_of_data")
            self.equity[-1] = self.cash

    def result(self) -> BacktestResult:
        exposed = np.zeros(len(self.bars), dtype=bool)
        for t in self.trades:
            exposed[t.entry_bar : t.exit_bar + 1] = True
        metrics = compute_metrics(
            self.equity, self.bars.close, self.trades, exposed, periods_per_year(self.bars, self.cfg)
        )
        return BacktestResult(
            config=self.cfg,
            metrics=metrics,
            trades=self.trades,
            equity_curve=self.equity.tolist(),
            drawdown_pct=drawdown_pct(self.equity).tolist(),
            timestamps=list(self.bars.ts) if self.bars.ts is not None else None,
        )
