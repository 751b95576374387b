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
        """Crossovers of the two SMAs, silenced before `warmup` bars exist (as the live path is).

        Exactly the live decisions, fast: a crossover depends only on the sign of fast - slow at two
        bars. The averages are first computed with numpy window sums, whose error is bounded far
        below `tolerance`; wherever fast - slow is within that tolerance of zero, the sign could
        differ from the live path's, so those bars are recomputed with the live `sma` itself.
        """
        import numpy as np

        from tradeflow.indicators import sma

        p = self.params
        prices = np.asarray(close, dtype=float)
        n = prices.size
        out = np.zeros(n, dtype=np.int8)
        if n < p.slow + 1:
            return out
        windows = np.lib.stride_tricks.sliding_window_view
        diff = np.full(n, np.nan)
        fast = windows(prices, p.fast).sum(axis=1)[p.slow - p.fast :] / p.fast
        slow = windows(prices, p.slow).sum(axis=1) / p.slow
        diff[p.slow - 1 :] = fast - slow
        # window sums of <= 1000 terms: error < 1000 * 2^-52 * max|price| per average; keep a wide margin
        tolerance = 1e-9 * float(np.max(np.abs(prices)))
        unsure = np.flatnonzero(np.abs(diff) <= tolerance)
        if unsure.size:
            values = prices.tolist()
            for t in unsure:
                exact_fast, exact_slow = sma(values, p.fast, end=int(t) + 1), sma(values, p.slow, end=int(t) + 1)
                assert exact_fast is not None and exact_slow is not None
                diff[t] = exact_fast - exact_slow
        previous, current = diff[:-1], diff[1:]
        out[1:][(previous <= 0) & (current > 0)] = 1
        out[1:][(previous >= 0) & (current < 0)] = -1
        out[: self.warmup - 1] = 0
        return out
