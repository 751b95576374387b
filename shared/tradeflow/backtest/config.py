"""How a backtest fills, charges and sizes: the settings of one run."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field

from tradeflow.domain import SizingRule
from tradeflow.domain.base import Model
from tradeflow.strategies.plan import ExitDistance, TradePlan


class BacktestConfig(Model):
    """Settings of one backtest run.

    - `fill`: `next_open` fills a signal taken at bar i's close at bar i+1's open (default); `close` fills
      it at bar i's close. A `next_open` signal on the last bar is never filled.
    - `commission`: fraction of notional charged on every fill (entry and exit), e.g. 0.002 = 0.2 %.
    - `slippage_bps`: market fills (signals, stop-losses, end-of-data) are moved against the trade by
      this many basis points; take-profits are limit orders and fill at their level (or a better open).
    - `size_pct`: percent of equity (cash, as the position is flat when entering) committed to a new
      position, commission included: units = equity * size_pct / 100 / (price * (1 + commission)),
      rounded down to whole units unless `fractional`. An entry of zero units is skipped.
    - `allow_short`: a SELL when long closes the long and opens a short; a BUY when short closes it and
      opens a long. Long-only, a SELL closes the long and nothing else. Never more than one position.
    - `stop_loss_pct` / `take_profit_pct`: exits at that percent from the entry price, checked against
      every bar's range from the fill bar on (a `close` fill: from the next bar). A bar opening beyond a
      level fills at the open. If the stop and the target both lie within one bar's range, the stop is
      assumed hit first (the conservative reading: the path inside a bar is unknown).
    - `trailing_stop_pct`: a stop that follows the best price since entry at this percent (see
      `TradePlan.trailing_stop`); `max_holding_bars`: close a position this many bars after its entry
      bar, at that bar's open.
    - A strategy's own plan (`Strategy.plan`, e.g. a rule spec's side, sizing and exits) overrides the
      settings above that were left at their defaults; a setting given explicitly wins over the plan.
      `resolve_plan` does the merge.
    - `finalize`: a position still open after the last bar is closed at the last bar's close
      (`last_close`, default) or at its open (`last_open`, what backtesting.py 0.6.6 does with
      `finalize_trades=True, trade_on_close=False`), with slippage and commission, exit reason
      `end_of_data`.
    - `periods_per_year`: annualisation factor for CAGR, volatility, Sharpe and Sortino; inferred from
      the bar times (bars per 365.25 days) when absent, 252 if there are no times.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash: float = Field(default=10_000.0, gt=0)
    commission: float = Field(default=0.0, ge=0, lt=0.1)
    slippage_bps: float = Field(default=0.0, ge=0, lt=1000)
    fill: Literal["next_open", "close"] = "next_open"
    size_pct: float = Field(default=100.0, gt=0, le=100)
    fractional: bool = False
    allow_short: bool = False
    stop_loss_pct: float | None = Field(default=None, gt=0, lt=100)
    take_profit_pct: float | None = Field(default=None, gt=0)
    trailing_stop_pct: float | None = Field(default=None, gt=0, lt=100)
    max_holding_bars: int | None = Field(default=None, ge=1)
    finalize: Literal["last_close", "last_open"] = "last_close"
    periods_per_year: float | None = Field(default=None, gt=0)

    def resolve_plan(self, strategy_plan: TradePlan | None = None) -> TradePlan:
        """The plan a run follows: this config's settings, with the strategy's plan in place of defaults."""

        def pct(value: float | None) -> ExitDistance | None:
            return ExitDistance(percent=value) if value is not None else None

        own = {
            "side": "both" if self.allow_short else "long",
            "sizing": SizingRule(percent=Decimal(repr(self.size_pct)), fractional=self.fractional),
            "stop_loss": pct(self.stop_loss_pct),
            "take_profit": pct(self.take_profit_pct),
            "trailing_stop": pct(self.trailing_stop_pct),
            "max_holding_bars": self.max_holding_bars,
        }
        if strategy_plan is None:
            return TradePlan.model_validate(own)
        explicit = {
            "side": "allow_short",
            "sizing": "size_pct",
            "stop_loss": "stop_loss_pct",
            "take_profit": "take_profit_pct",
            "trailing_stop": "trailing_stop_pct",
            "max_holding_bars": "max_holding_bars",
        }
        merged = strategy_plan.model_dump()
        for field, setting in explicit.items():
            if setting in self.model_fields_set or merged[field] is None:
                merged[field] = own[field]
        if self.fractional and merged["sizing"] is not None:
            sizing = merged["sizing"]
            merged["sizing"] = (sizing if isinstance(sizing, dict) else sizing.model_dump()) | {"fractional": True}
        return TradePlan.model_validate(merged)
