"""OHLCV bars: the market data every strategy evaluates."""

from __future__ import annotations

from decimal import Decimal

from pydantic import ConfigDict, model_validator

from tradeflow.domain.base import Model
from tradeflow.domain.types import Price, Quantity, Symbol, UtcDatetime


class Bar(Model):
    """One OHLCV bar; `ts` is the bar's open time, `timeframe` e.g. `1m`, `1h`, `1d`."""

    model_config = ConfigDict(frozen=True)

    symbol: Symbol
    timeframe: str = "1m"
    ts: UtcDatetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity = Decimal(0)
    # Replays re-base historical bars onto the replay clock; the recorded time is kept here.
    source_ts: UtcDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Bar:
        for name in ("open", "high", "low", "close"):
            if getattr(self, name) <= 0:
                raise ValueError(f"prices must be positive: {name} is {getattr(self, name)}")
        if self.high < max(self.open, self.close, self.low) or self.low > min(self.open, self.close):
            raise ValueError("high/low do not bound open/close")
        if self.volume < 0:
            raise ValueError("volume must not be negative")
        return self
