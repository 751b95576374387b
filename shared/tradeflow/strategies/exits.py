"""A trade plan's exits on the live path: is the open position due to be closed?

The backtester checks stops, targets and trailing stops inside every bar and fills at the level; the
live strategy function sees closed bars, so it asks this module, at each evaluation, whether the
position opened at `entry_time` has touched a level in any bar since its entry, or is due for its
maximum holding time. If so, the function emits the closing signal (SELL for a long, BUY for a short),
filled at the next bar's open like every signal. The same `TradePlan` and the same rules as
`backtest/engine.py` are applied, in the same order within a bar:

- the entry bar is the bar containing `entry_time` (the fill); ATR distances use ATR(atr_period) at the
  bar before it, the signal bar, as the backtester does;
- a bar touching the stop (the tighter of the fixed and the trailing stop) or the target is an exit;
  when both are touched the stop is read first; then the trailing stop moves to the bar's extreme
  (never triggered by the bar that raised it);
- `max_holding_bars`: due when the next bar would be the one the backtester closes at (its open).

Differences from the backtest, by construction: a touched level is acted on at the next open (a market
order), not at the level itself; and the plan acts on the account's position in the symbol.
No numpy: this runs in the strategy function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from tradeflow.domain import Bar
from tradeflow.domain.base import Model
from tradeflow.indicators import atr
from tradeflow.strategies.plan import ExitLevels, TradePlan

LiveExitReason = Literal["stop_loss", "trailing_stop", "take_profit", "max_holding"]


class LiveExit(Model):
    """Why the position is to be closed: the rule, the level touched (none for a holding limit), and
    the bar that touched it."""

    model_config = ConfigDict(frozen=True)

    reason: LiveExitReason
    level: float | None
    bar_time: datetime
    bars_held: int

    def reasons(self) -> dict[str, object]:
        detail: dict[str, object] = {"exit": self.reason, "bar": self.bar_time.isoformat()}
        if self.level is not None:
            detail["level"] = round(self.level, 8)
        detail["bars_held"] = self.bars_held
        return detail


def has_exits(plan: TradePlan | None) -> bool:
    """Whether the plan has any exit that the live path must watch."""
    return plan is not None and (
        plan.stop_loss is not None
        or plan.take_profit is not None
        or plan.trailing_stop is not None
        or plan.max_holding_bars is not None
    )


def bars_needed(plan: TradePlan) -> int:
    """Bars before the entry bar that the ATR distances need."""
    return plan.atr_period + 1


def due_exit(
    plan: TradePlan, side: int, entry_price: float, entry_time: datetime, bars: Sequence[Bar]
) -> LiveExit | None:
    """The exit due for a position (`side` +1 long, -1 short) entered at `entry_price` at `entry_time`,
    given `bars` (oldest first, the last one closed, starting `bars_needed(plan)` bars before the entry
    bar when ATR distances are used). None when no exit is due, or when the bars do not reach the entry."""
    entry = _entry_index(bars, entry_time)
    if entry is None:
        return None
    highs = [float(b.high) for b in bars]
    lows = [float(b.low) for b in bars]
    closes = [float(b.close) for b in bars]
    atr_value = math.nan
    if plan.uses_atr:
        value = atr(highs[:entry], lows[:entry], closes[:entry], plan.atr_period) if entry > 0 else None
        atr_value = value if value is not None else math.nan
    levels = ExitLevels.at_entry(plan, side, entry_price, atr_value)
    target = levels.target
    best = entry_price
    last = len(bars) - 1
    for j in range(entry, last + 1):
        level, use_trail = levels.stop_level(best)
        adverse, favourable = (lows[j], highs[j]) if side > 0 else (highs[j], lows[j])
        if (adverse <= level) if side > 0 else (adverse >= level):
            reason: LiveExitReason = "trailing_stop" if use_trail else "stop_loss"
            return LiveExit(reason=reason, level=level, bar_time=bars[j].ts, bars_held=j - entry)
        if (favourable >= target) if side > 0 else (favourable <= target):
            return LiveExit(reason="take_profit", level=target, bar_time=bars[j].ts, bars_held=j - entry)
        best = max(best, highs[j]) if side > 0 else min(best, lows[j])
    held = last - entry
    if plan.max_holding_bars is not None and held + 1 >= plan.max_holding_bars:
        return LiveExit(reason="max_holding", level=None, bar_time=bars[last].ts, bars_held=held)
    return None


def _entry_index(bars: Sequence[Bar], entry_time: datetime) -> int | None:
    """The bar containing `entry_time`: the last one opening at or before it."""
    found = None
    for i, bar in enumerate(bars):
        if bar.ts > entry_time:
            break
        found = i
    return found
