"""`rules`: a strategy written as a declarative spec (JSON) instead of code.

The strategy's parameters ARE the spec (`RuleSpec`), so `create("rules", spec)` works wherever the
platform creates strategies, and a bad spec fails like any bad parameter: one message naming the field
(`params.entry.all.1.op: ...`). See `spec.py` for the format, `operands.py` for the indicators,
`evaluate.py` (live) and `vectorised.py` (backtests; proven equal to the live walk).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from tradeflow.domain import Bar, SignalAction
from tradeflow.indicators import atr
from tradeflow.strategies.base import Decision, Strategy, register
from tradeflow.strategies.plan import TradePlan
from tradeflow.strategies.rules.evaluate import CompiledSpec, compile_spec, decide
from tradeflow.strategies.rules.operands import INDICATORS
from tradeflow.strategies.rules.spec import Condition, Operand, RuleSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["INDICATORS", "Condition", "Operand", "RuleSpec", "RuleStrategy"]

_ACTIONS = {1: SignalAction.BUY, -1: SignalAction.SELL, 0: SignalAction.HOLD}


@register("rules")
class RuleStrategy(Strategy):
    """Signals from the spec's conditions: side long: entry BUY, exit SELL; side short: entry SELL,
    exit BUY; side both: entry BUY, short_entry SELL; both directions true on one bar: HOLD.
    `evaluate` always uses exactly the last `warmup` bars it is given."""

    Params = RuleSpec
    params: RuleSpec

    def __init__(self, params: RuleSpec) -> None:
        super().__init__(params)
        self._compiled: CompiledSpec = compile_spec(params)

    @property
    def warmup(self) -> int:
        return self._compiled.warmup

    @property
    def plan(self) -> TradePlan:
        return self.params.plan

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        w = self.warmup
        if len(bars) < w:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(bars)}/{w} bars"})
        window = bars[len(bars) - w :]
        columns = {k: [float(getattr(b, k)) for b in window] for k in ("open", "high", "low", "close", "volume")}
        code, reasons = decide(self._compiled, columns)
        reasons = {"strategy": self.params.name, **reasons}
        volatility = atr(columns["high"], columns["low"], columns["close"], self.params.atr_period)
        return Decision(action=_ACTIONS[code], reasons=reasons, atr=volatility)

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
        """The live decisions of every bar, vectorised (see `vectorised.py`), silenced before `warmup`."""
        import numpy as np

        from tradeflow.strategies.rules import vectorised

        arrays = [np.asarray(a, dtype=float) for a in (open, high, low, close, volume)]
        n = arrays[3].size
        if any(a.shape != (n,) for a in arrays):
            raise ValueError("open, high, low, close and volume must be 1-d arrays of the same length")
        return vectorised.signals(self._compiled, *arrays)
