"""Technical indicators, each in two forms: a windowed form over plain sequences for live evaluation
(no numpy import on the strategy function's cold path) and a vectorised numpy form for backtests."""

from tradeflow.indicators.crossover import Cross, cross
from tradeflow.indicators.moving_average import sma, sma_series
from tradeflow.indicators.volatility import atr, atr_series, true_ranges

__all__ = ["Cross", "atr", "atr_series", "cross", "sma", "sma_series", "true_ranges"]
