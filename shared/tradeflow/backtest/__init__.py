"""The backtester: a strategy's vectorised signals replayed through a fill, cost and sizing model.

numpy only (pandas is not needed); never imported by the Lambda hot path. `run_backtest` is the unit of
work (one strategy, one symbol, one configuration) that optimisation sweeps fan out.
"""

from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.data import Ohlcv
from tradeflow.backtest.engine import run_backtest
from tradeflow.backtest.metrics import compute_metrics, drawdown_pct, max_drawdown_duration
from tradeflow.backtest.results import BacktestResult, Metrics, Trade

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
]
