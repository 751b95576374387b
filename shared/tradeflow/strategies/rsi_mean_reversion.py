"""RSI mean reversion: buy when RSI crosses up through `oversold`, sell when it crosses down through
`overbought`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, model_validator

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.indicators import atr, convergence_lookback
from tradeflow.indicators.momentum import rsi_values
from tradeflow.strategies.base import Decision, Strategy, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# RSI lives on 0..100; a window of `warmup` bars agrees with the full history to 1e-9 relative, i.e.
# within 1e-7 absolute. Bars whose full-history RSI is farther than this from both thresholds cannot
# decide differently in a window, so the vectorised override only re-evaluates the others.
_RSI_SLACK = 1e-4


class RsiMeanReversionParams(Model):
    model_config = ConfigDict(extra="forbid")

    period: int = Field(default=14, ge=2, le=200)
    oversold: float = Field(default=30.0, gt=0, lt=100)
    overbought: float = Field(default=70.0, gt=0, lt=100)
    atr_period: int = Field(default=14, ge=1, le=500)

    @model_validator(mode="after")
    def _ordered(self) -> RsiMeanReversionParams:
        if self.oversold >= self.overbought:
            raise ValueError("oversold must be smaller than overbought")
        return self


def _rsi_rule(closes: Sequence[float], p: RsiMeanReversionParams) -> tuple[int, float, float]:
    """(+1 buy / -1 sell / 0 hold, previous RSI, current RSI) on the last bar of `closes`."""
    values = rsi_values(closes, p.period)
    prev, cur = values[-2], values[-1]
    if prev <= p.oversold < cur:
        return 1, prev, cur
    if prev >= p.overbought > cur:
        return -1, prev, cur
    return 0, prev, cur


@register("rsi_mean_reversion")
class RsiMeanReversion(Strategy):
    """Wilder RSI(`period`) crossing its thresholds. RSI is recursive, so `warmup` is
    `convergence_lookback("rsi", period) + 1` bars (the previous bar's RSI also needs the lookback),
    and `evaluate` always uses exactly the last `warmup` bars it is given."""

    Params = RsiMeanReversionParams
    params: RsiMeanReversionParams

    @property
    def warmup(self) -> int:
        p = self.params
        return max(convergence_lookback("rsi", p.period) + 1, p.period + 2, p.atr_period + 1)

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        p = self.params
        w = self.warmup
        if len(bars) < w:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(bars)}/{w} bars"})
        window = bars[len(bars) - w :]
        closes = [float(b.close) for b in window]
        code, prev, cur = _rsi_rule(closes, p)
        action = {1: SignalAction.BUY, -1: SignalAction.SELL}.get(code, SignalAction.HOLD)
        fired = {
            1: f"rsi({p.period}) crossed up through oversold {p.oversold}",
            -1: f"rsi({p.period}) crossed down through overbought {p.overbought}",
        }.get(code, "no threshold crossing")
        volatility = atr([float(b.high) for b in window], [float(b.low) for b in window], closes, p.atr_period)
        reasons = {
            "rule": fired,
            "rsi": round(cur, 6),
            "prev_rsi": round(prev, 6),
            "oversold": p.oversold,
            "overbought": p.overbought,
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
        """Exactly the bar-by-bar walk, fast. A window-limited RSI can differ from the full-history one
        in the last bits, so the full-history RSI series only selects candidate bars: those where it
        crosses a threshold or where its previous or current value lies within `_RSI_SLACK` of one.
        Every candidate is then decided by the same rule on the same `warmup`-bar window as `evaluate`;
        all other bars hold (the window's RSI, within 1e-7 of the full one, is on the same side)."""
        import numpy as np

        from tradeflow.indicators import rsi_series

        p = self.params
        closes = np.asarray(close, dtype=float)
        n, w = closes.size, self.warmup
        out = np.zeros(n, dtype=np.int8)
        if n < w:
            return out
        full = rsi_series(closes, p.period)
        prev, cur = full[w - 2 : n - 1], full[w - 1 :]
        candidate = (prev <= p.oversold) & (cur > p.oversold) | (prev >= p.overbought) & (cur < p.overbought)
        for level in (p.oversold, p.overbought):
            candidate |= (np.abs(prev - level) <= _RSI_SLACK) | (np.abs(cur - level) <= _RSI_SLACK)
        values = closes.tolist()
        for j in np.flatnonzero(candidate):
            i = int(j) + w - 1
            out[i] = _rsi_rule(values[i + 1 - w : i + 1], p)[0]
        return out
