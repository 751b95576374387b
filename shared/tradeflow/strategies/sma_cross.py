"""SMA crossover: long when the fast average crosses above the slow one, flat when it crosses below."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, model_validator

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.indicators import Cross, atr, cross, sma
from tradeflow.strategies.base import Decision, Strategy, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class SmaCrossParams(Model):
    model_config = ConfigDict(extra="forbid")

    fast: int = Field(default=10, ge=1, le=500)
    slow: int = Field(default=30, ge=2, le=1000)
    atr_period: int = Field(default=14, ge=1, le=500)

    @model_validator(mode="after")
    def _ordered(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


@register("sma_cross")
class SmaCross(Strategy):
    Params = SmaCrossParams
    params: SmaCrossParams

    @property
    def warmup(self) -> int:
        return max(self.params.slow, self.params.atr_period) + 1

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        p = self.params
        closes = [float(b.close) for b in bars]
        if len(closes) < p.slow + 1:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(closes)}/{p.slow + 1} bars"})
        fast, slow = sma(closes, p.fast), sma(closes, p.slow)
        prev_fast, prev_slow = sma(closes, p.fast, end=len(closes) - 1), sma(closes, p.slow, end=len(closes) - 1)
        assert fast is not None and slow is not None and prev_fast is not None and prev_slow is not None
        crossed = cross(prev_fast, prev_slow, fast, slow)
        action = {Cross.ABOVE: SignalAction.BUY, Cross.BELOW: SignalAction.SELL}.get(crossed, SignalAction.HOLD)
        volatility = atr([float(b.high) for b in bars], [float(b.low) for b in bars], closes, p.atr_period)
        reasons = {
            "rule": f"sma({p.fast}) vs sma({p.slow})",
            "fast": round(fast, 6),
            "slow": round(slow, 6),
            "cross": crossed.value,
            "close": closes[-1],
        }
        return Decision(action=action, reasons=reasons, atr=volatility)

    def signals(
        self,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        ts: Sequence[datetime] | None = None,
        symbol: str = "BACKTEST",
    ) -> np.ndarray:
        """Crossovers of the two SMA series, silenced before `warmup` bars exist (as the live path is)."""
        from tradeflow.indicators import cross_series, sma_series

        p = self.params
        out = cross_series(sma_series(close, p.fast), sma_series(close, p.slow))
        out[: self.warmup - 1] = 0
        return out
