"""Donchian breakout: buy when the close breaks above the previous bar's `entry_period`-bar high, sell
when it breaks below the previous bar's `exit_period`-bar low."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.indicators import atr, rolling_max, rolling_min
from tradeflow.strategies.base import Decision, Strategy, register

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class DonchianBreakoutParams(Model):
    model_config = ConfigDict(extra="forbid")

    entry_period: int = Field(default=20, ge=1, le=1000)
    exit_period: int = Field(default=10, ge=1, le=1000)
    atr_period: int = Field(default=14, ge=1, le=500)


@register("donchian_breakout")
class DonchianBreakout(Strategy):
    """The channel is that of the bars BEFORE the current one (the current bar's own high is never
    above its Donchian upper). Both rules cannot fire together: the previous bar's high is at most the
    entry high and its low at least the exit low. Rolling highs and lows are exact in any window."""

    Params = DonchianBreakoutParams
    params: DonchianBreakoutParams

    @property
    def warmup(self) -> int:
        p = self.params
        return max(p.entry_period, p.exit_period, p.atr_period) + 1

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        p = self.params
        w = self.warmup
        if len(bars) < w:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(bars)}/{w} bars"})
        window = bars[len(bars) - w :]
        highs = [float(b.high) for b in window]
        lows = [float(b.low) for b in window]
        closes = [float(b.close) for b in window]
        upper = rolling_max(highs[:-1], p.entry_period)
        lower = rolling_min(lows[:-1], p.exit_period)
        assert upper is not None and lower is not None
        last = closes[-1]
        if last > upper:
            action, fired = SignalAction.BUY, f"close above the previous {p.entry_period}-bar high"
        elif last < lower:
            action, fired = SignalAction.SELL, f"close below the previous {p.exit_period}-bar low"
        else:
            action, fired = SignalAction.HOLD, "close inside the channel"
        reasons = {"rule": fired, "close": last, "entry_high": upper, "exit_low": lower}
        return Decision(action=action, reasons=reasons, atr=atr(highs, lows, closes, p.atr_period))

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
        """Close against the rolling high/low series shifted by one bar, silenced before `warmup` bars
        exist (as the live path is). Maxima and minima are exact, so this equals the walk."""
        import numpy as np

        from tradeflow.indicators import rolling_max_series, rolling_min_series

        p = self.params
        closes = np.asarray(close, dtype=float)
        n = closes.size
        out = np.zeros(n, dtype=np.int8)
        w = self.warmup
        if n < w:
            return out
        upper = rolling_max_series(high, p.entry_period)[w - 2 : n - 1]
        lower = rolling_min_series(low, p.exit_period)[w - 2 : n - 1]
        cur = closes[w - 1 :]
        out[w - 1 :][cur > upper] = 1
        out[w - 1 :][cur < lower] = -1
        return out
