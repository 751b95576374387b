"""Strategies: one definition each, evaluated identically in live runs and backtests."""

from tradeflow.strategies.base import Decision, Strategy, StrategyError, create, register, registered

# Built-ins register themselves on import.
from tradeflow.strategies import donchian_breakout as _donchian_breakout  # noqa: F401  isort: skip
from tradeflow.strategies import macd_trend as _macd_trend  # noqa: F401  isort: skip
from tradeflow.strategies import pro as _pro  # noqa: F401  isort: skip
from tradeflow.strategies import rsi_mean_reversion as _rsi_mean_reversion  # noqa: F401  isort: skip
from tradeflow.strategies import rules as _rules  # noqa: F401  isort: skip
from tradeflow.strategies import sma_cross as _sma_cross  # noqa: F401  isort: skip

__all__ = ["Decision", "Strategy", "StrategyError", "create", "register", "registered"]
