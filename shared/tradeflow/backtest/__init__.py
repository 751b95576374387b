"""The backtester: a strategy's vectorised signals replayed through a fill, cost and sizing model.

numpy only (pandas is not needed); never imported by the Lambda hot path. `run_backtest` is the unit of
work (one strategy, one symbol, one configuration) that optimisation sweeps fan out.

Names are imported on first use: the settings and result models (`config`, `results`) are light, the
engine pulls numpy in, and the API only needs the engine when it actually runs a backtest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeflow.backtest.config import BacktestConfig as BacktestConfig
    from tradeflow.backtest.data import Ohlcv as Ohlcv
    from tradeflow.backtest.engine import run_backtest as run_backtest
    from tradeflow.backtest.engine import run_portfolio as run_portfolio
    from tradeflow.backtest.metrics import compute_metrics as compute_metrics
    from tradeflow.backtest.metrics import drawdown_pct as drawdown_pct
    from tradeflow.backtest.metrics import max_drawdown_duration as max_drawdown_duration
    from tradeflow.backtest.results import BacktestResult as BacktestResult
    from tradeflow.backtest.results import Metrics as Metrics
    from tradeflow.backtest.results import Trade as Trade

_HOMES = {
    "BacktestConfig": "config",
    "BacktestResult": "results",
    "Metrics": "results",
    "Ohlcv": "data",
    "Trade": "results",
    "compute_metrics": "metrics",
    "drawdown_pct": "metrics",
    "max_drawdown_duration": "metrics",
    "run_backtest": "engine",
    "run_portfolio": "engine",
}

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Metrics",
    "Ohlcv",
    "Trade",
    "compute_metrics",
    "drawdown_pct",
    "max_drawdown_duration",
    "run_backtest",
    "run_portfolio",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tradeflow.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tradeflow.backtest.{home}"), name)
