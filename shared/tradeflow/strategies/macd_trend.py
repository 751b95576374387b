"""MACD trend: buy when the MACD line crosses above its signal line (optionally only while the line is
above zero), sell when it crosses below."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, model_validator

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.indicators import Cross, atr, convergence_lookback, cross
from tradeflow.indicators.momentum import macd_values
from tradeflow.strategies.base import Decision, Strategy, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A window of `warmup` bars gives MACD within 1e-9 of the price of the full-history value. Bars whose
# full-history line-minus-signal (and line, with require_positive) is farther than this fraction of the
# close from zero cannot decide differently in a window; only the others are re-evaluated per window.
_MACD_SLACK = 1e-6


class MacdTrendParams(Model):
    model_config = ConfigDict(extra="forbid")

    fast: int = Field(default=12, ge=1, le=200)
    slow: int = Field(default=26, ge=2, le=400)
    signal: int = Field(default=9, ge=1, le=200)
    require_positive: bool = False
    atr_period: int = Field(default=14, ge=1, le=500)

    @model_validator(mode="after")
    def _ordered(self) -> MacdTrendParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


def _macd_rule(closes: Sequence[float], p: MacdTrendParams) -> tuple[int, Cross, float, float]:
    """(+1 buy / -1 sell / 0 hold, the crossing, MACD line, signal line) on the last bar of `closes`."""
    line, sig, _ = macd_values(closes, p.fast, p.slow, p.signal)
    crossed = cross(line[-2], sig[-2], line[-1], sig[-1])
    if crossed is Cross.ABOVE and (not p.require_positive or line[-1] > 0):
        return 1, crossed, line[-1], sig[-1]
    if crossed is Cross.BELOW:
        return -1, crossed, line[-1], sig[-1]
    return 0, crossed, line[-1], sig[-1]


@register("macd_trend")
class MacdTrend(Strategy):
    """MACD(`fast`, `slow`, `signal`) line against its signal line. MACD is recursive, so `warmup` is
    `convergence_lookback("macd", slow, signal) + 1` bars (the previous bar's values also need the
    lookback), and `evaluate` always uses exactly the last `warmup` bars it is given."""

    Params = MacdTrendParams
    params: MacdTrendParams

    @property
    def warmup(self) -> int:
        p = self.params
        return max(convergence_lookback("macd", p.slow, p.signal) + 1, p.slow + p.signal, p.atr_period + 1)

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        p = self.params
        w = self.warmup
        if len(bars) < w:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(bars)}/{w} bars"})
        window = bars[len(bars) - w :]
        closes = [float(b.close) for b in window]
        code, crossed, line, sig = _macd_rule(closes, p)
        action = {1: SignalAction.BUY, -1: SignalAction.SELL}.get(code, SignalAction.HOLD)
        if code == 1:
            fired = "macd crossed above signal" + (" while macd > 0" if p.require_positive else "")
        elif code == -1:
            fired = "macd crossed below signal"
        elif crossed is Cross.ABOVE:
            fired = "macd crossed above signal but macd <= 0 (require_positive)"
        else:
            fired = "no crossing"
        volatility = atr([float(b.high) for b in window], [float(b.low) for b in window], closes, p.atr_period)
        reasons = {
            "rule": fired,
            "macd": round(line, 6),
            "signal": round(sig, 6),
            "histogram": round(line - sig, 6),
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
        """Exactly the bar-by-bar walk, fast. A window-limited MACD can differ from the full-history one
        in the last bits, so the full-history series only selects candidate bars: crossings of the line
        and signal, and bars where line - signal at the previous or current bar (or the line, with
        `require_positive`) is within `_MACD_SLACK` * close of zero. Every candidate is decided by the
        same rule on the same `warmup`-bar window as `evaluate`; all other bars hold."""
        import numpy as np

        from tradeflow.indicators import cross_series, macd_series

        p = self.params
        closes = np.asarray(close, dtype=float)
        n, w = closes.size, self.warmup
        out = np.zeros(n, dtype=np.int8)
        if n < w:
            return out
        line, sig, hist = macd_series(closes, p.fast, p.slow, p.signal)
        slack = _MACD_SLACK * np.abs(closes[w - 1 :])
        candidate = cross_series(line, sig)[w - 1 :] != 0
        candidate |= (np.abs(hist[w - 2 : n - 1]) <= slack) | (np.abs(hist[w - 1 :]) <= slack)
        if p.require_positive:
            candidate |= np.abs(line[w - 1 :]) <= slack
        values = closes.tolist()
        for j in np.flatnonzero(candidate):
            i = int(j) + w - 1
            out[i] = _macd_rule(values[i + 1 - w : i + 1], p)[0]
        return out
