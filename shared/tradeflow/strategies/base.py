"""The strategy interface and its registry.

A strategy is constructed from validated parameters, says how many bars it needs (`warmup`), and maps
a window of bars (oldest first, the last one being the bar the decision is taken on) to a Decision.
It must be a pure function of those bars: that is what lets the live path and the backtester agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradeflow.domain import Bar, SignalAction
from tradeflow.domain.base import Model
from tradeflow.domain.validation import describe


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


_REGISTRY: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])


def register(name: str) -> Callable[[S], S]:
    def decorate(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise StrategyError(f"strategy '{name}' is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, params: dict[str, Any] | None = None) -> Strategy:
    cls = _REGISTRY.get(name)
    if cls is None:
        raise StrategyError(f"unknown strategy '{name}'; known: {', '.join(registered())}")
    try:
        parsed = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        raise StrategyError(f"invalid parameters for '{name}': {describe(exc, root='params', limit=20)}") from exc
    return cls(parsed)
