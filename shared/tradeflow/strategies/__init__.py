"""Strategies: one definition each, evaluated identically in live runs and backtests."""

from tradeflow.strategies.base import Decision, Strategy, StrategyError, create, register, registered

# Built-ins register themselves on import.
from tradeflow.strategies import sma_cross as _sma_cross  # noqa: F401  isort: skip

__all__ = ["Decision", "Strategy", "StrategyError", "create", "register", "registered"]
