"""The strategy interface and its registry.

A strategy is constructed from validated parameters, says how many bars it needs (`warmup`), and maps
a window of bars (oldest first, the last one being the bar the decision is taken on) to a Decision.
It must be a pure function of those bars: that is what lets the live path and the backtester agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.domain.validation import describe
from tradeflow.strategies.plan import TradePlan

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


class Decision(Model):
    model_config = ConfigDict(frozen=True)

    action: SignalAction
    reasons: dict[str, Any] = Field(default_factory=dict)
    atr: float | None = None


class StrategyError(ValueError):
    """Unknown strategy name or invalid parameters; the message names the field."""


class Strategy(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Bars needed for a decision."""

    @abstractmethod
    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        """Decide on the last bar of `bars`."""

    @property
    def plan(self) -> TradePlan | None:
        """Sides, sizing and exits this strategy prescribes; None leaves them to the run's settings."""
        return None

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
        """The decision of every bar at its close, vectorised for backtests: int8, +1 buy, -1 sell, 0 hold.

        This default is the live path itself: bar `i` gets `evaluate` of the `warmup` bars ending at `i`
        (0 while fewer than `warmup` bars exist, as the strategy function then refuses to decide). It is
        slow but always right; strategies override it with indicator series and a test proves the
        override equal to this walk. `ts` (bar open times) defaults to consecutive days, for strategies
        that do not look at time.
        """
        import numpy as np

        arrays = [np.asarray(a, dtype=float) for a in (open, high, low, close, volume)]
        n = arrays[3].size
        if any(a.shape != (n,) for a in arrays):
            raise ValueError("open, high, low, close and volume must be 1-d arrays of the same length")
        if ts is not None and len(ts) != n:
            raise ValueError("ts must have one timestamp per bar")
        times = list(ts) if ts is not None else [_EPOCH + timedelta(days=i) for i in range(n)]
        bars = [
            Bar(
                symbol=symbol,
                ts=times[i],
                open=Decimal(repr(float(arrays[0][i]))),
                high=Decimal(repr(float(arrays[1][i]))),
                low=Decimal(repr(float(arrays[2][i]))),
                close=Decimal(repr(float(arrays[3][i]))),
                volume=Decimal(repr(float(arrays[4][i]))),
            )
            for i in range(n)
        ]
        codes = {SignalAction.BUY: 1, SignalAction.SELL: -1, SignalAction.HOLD: 0}
        out = np.zeros(n, dtype=np.int8)
        warmup = self.warmup
        for i in range(warmup - 1, n):
            out[i] = codes[self.evaluate(bars[i + 1 - warmup : i + 1]).action]
        return out


_REGISTRY: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])

# The built-ins and their modules, imported when first asked for: a function running one strategy does
# not pay at cold start for importing every other (the rule-spec compiler alone is ~50 ms).
BUILTINS = {
    name: f"tradeflow.strategies.{module}"
    for name, module in {
        "donchian_breakout": "donchian_breakout",
        "macd_trend": "macd_trend",
        "pro": "pro",
        "rsi_mean_reversion": "rsi_mean_reversion",
        "rules": "rules",
        "sma_cross": "sma_cross",
    }.items()
}


def register(name: str) -> Callable[[S], S]:
    def decorate(cls: S) -> S:
        owner = _REGISTRY.get(name)
        if owner is None and name in BUILTINS and not cls.__module__.startswith(BUILTINS[name]):
            owner = _builtin(name)
        if owner is not None and owner is not cls:
            kind = "the built-in" if owner.__module__.startswith("tradeflow.") else "the strategy"
            raise StrategyError(
                f"strategy '{name}' is already registered: {kind} {owner.__module__}.{owner.__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _discover() -> None:
    """Built-ins register on import; user strategies (entry points, TRADEFLOW_STRATEGY_PATH) are
    loaded once, here, on the first registry call (see `discovery.py`)."""
    from tradeflow.strategies import discovery

    discovery.ensure_loaded()


def _builtin(name: str) -> type[Strategy] | None:
    """The built-in strategy `name`, its module imported on first use (None: not a built-in)."""
    if name not in _REGISTRY and name in BUILTINS:
        import importlib

        importlib.import_module(BUILTINS[name])
    return _REGISTRY.get(name) if name in BUILTINS else None


def registered() -> list[str]:
    for name in BUILTINS:
        _builtin(name)
    _discover()
    return sorted(_REGISTRY)


def create(name: str, params: dict[str, Any] | None = None) -> Strategy:
    _builtin(name)
    _discover()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise StrategyError(f"unknown strategy '{name}'; known: {', '.join(registered())}")
    try:
        parsed = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        valid = ", ".join(cls.Params.model_fields)
        raise StrategyError(
            f"invalid parameters for '{name}': {describe(exc, root='params', limit=20)}; valid parameters: {valid}"
        ) from exc
    return cls(parsed)
