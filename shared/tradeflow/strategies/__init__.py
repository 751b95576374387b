"""Strategies: one definition each, evaluated identically in live runs and backtests.

The built-ins (`base.BUILTINS`: sma_cross, rsi_mean_reversion, donchian_breakout, macd_trend, pro and
rules, the rule-spec strategy) are imported on first use by `create` or `registered`; user strategies are
discovered then too (`discovery.py`).
"""

from tradeflow.strategies.base import Decision, Strategy, StrategyError, create, register, registered

__all__ = ["Decision", "Strategy", "StrategyError", "create", "register", "registered"]
