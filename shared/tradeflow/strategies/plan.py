"""A strategy's trade plan: which sides it trades, how it sizes, and how a position is exited besides
its exit signals (stop loss, take profit, trailing stop, maximum holding time).

Signals say *when*; the plan says *how much* and *how to get out*. Rule specs carry one (their
`side`, `sizing`, `stop_loss`, … fields); code strategies may define one by overriding
`Strategy.plan`. The backtester applies it (`BacktestConfig.with_plan`), the live path's risk function
sizes with the same `SizingRule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from tradeflow.domain import SizingRule
from tradeflow.domain.base import Model

Side = Literal["long", "short", "both"]


class ExitDistance(Model):
    """A distance from a price: `percent` of it, or `atr` multiples of the ATR at the entry signal.

    Exactly one of the two is given. `{"percent": 5}` puts a long's stop 5 % below its entry price;
    `{"atr": 2}` puts it 2 x ATR(atr_period) below, the ATR taken at the bar whose signal opened it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: float | None = Field(default=None, gt=0, lt=1000)
    atr: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_of(self) -> ExitDistance:
        if (self.percent is None) == (self.atr is None):
            raise ValueError("give exactly one of 'percent' or 'atr'")
        return self

    def distance(self, price: float, atr: float) -> float:
        """The distance in price units (NaN when it needs an ATR that is not known yet)."""
        return price * self.percent / 100 if self.percent is not None else atr * (self.atr or 0.0)


class PlanFields(Model):
    """The fields of a trade plan and their rules; `TradePlan` and a rule spec (which carries the same
    fields at its top level) both build on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Side = "long"
    sizing: SizingRule | None = None
    stop_loss: ExitDistance | None = None
    take_profit: ExitDistance | None = None
    trailing_stop: ExitDistance | None = None
    max_holding_bars: int | None = Field(default=None, ge=1, le=1_000_000)
    atr_period: int = Field(default=14, ge=1, le=500)

    @model_validator(mode="after")
    def _stop_below_zero(self) -> PlanFields:
        for name in ("stop_loss", "trailing_stop"):
            rule: ExitDistance | None = getattr(self, name)
            if rule is not None and rule.percent is not None and rule.percent >= 100 and self.side != "short":
                raise ValueError(f"{name}.percent must be below 100 for a long position")
        return self


class TradePlan(PlanFields):
    """How positions are opened and closed, apart from the signals themselves.

    - `side`: `long` opens longs on BUY and closes them on SELL; `short` opens shorts on SELL and covers
      on BUY; `both` reverses from one to the other.
    - `sizing`: the same rule the live risk function applies (fixed quantity, percent of equity, or
      ATR risk: risk `risk_fraction` of equity over a stop `atr_multiple` x ATR away).
    - `stop_loss`, `take_profit`: fixed at entry. A percent stop above 100 % is refused for longs.
    - `trailing_stop`: follows the best price reached since entry (highest high for a long, lowest low
      for a short), measured from that price; it only ever tightens.
    - `max_holding_bars`: a position still open after this many bars is closed at the next bar's open.
    - `atr_period`: the ATR behind every `atr` distance and `atr_risk` sizing.
    """

    @property
    def uses_atr(self) -> bool:
        rules = (self.stop_loss, self.take_profit, self.trailing_stop)
        by_atr = any(r is not None and r.atr is not None for r in rules)
        return by_atr or (self.sizing is not None and self.sizing.method.value == "atr_risk")


@dataclass(frozen=True)
class ExitLevels:
    """A position's exit levels, set at entry from the plan; NaN (or a zero fraction) where there is none.

    One definition for the backtester (`backtest/engine.py`) and the live check (`strategies/exits.py`),
    so both read the same stop the same way: a percent trailing stop is a fraction of the best price since
    entry, an ATR one a distance fixed at entry, and the tighter of it and the fixed stop binds.
    """

    side: int  # +1 long, -1 short
    stop: float
    target: float
    trail_fraction: float
    trail: float

    @classmethod
    def at_entry(cls, plan: TradePlan, side: int, price: float, atr: float) -> ExitLevels:
        sl, tp, tr = plan.stop_loss, plan.take_profit, plan.trailing_stop
        return cls(
            side=side,
            stop=price - side * sl.distance(price, atr) if sl is not None else math.nan,
            target=price + side * tp.distance(price, atr) if tp is not None else math.nan,
            trail_fraction=tr.percent / 100 if tr is not None and tr.percent is not None else 0.0,
            trail=tr.distance(price, atr) if tr is not None and tr.atr is not None else math.nan,
        )

    def stop_level(self, best: float) -> tuple[float, bool]:
        """The binding stop given the best price since entry, and whether it is the trailing one."""
        d = self.side
        trailing = best * (1 - d * self.trail_fraction) if self.trail_fraction else best - d * self.trail
        if math.isnan(self.stop):
            use_trail = not math.isnan(trailing)
        else:
            use_trail = trailing > self.stop if d > 0 else trailing < self.stop
        return (trailing if use_trail else self.stop), use_trail
