"""Technical indicators, each in two forms: a windowed form over plain sequences for live evaluation
(no numpy import on the strategy function's cold path) and a vectorised numpy form for backtests.

Both forms agree bit for bit: the windowed form of a recursive indicator (EMA, RSI, MACD, ADX) given
the full history up to a bar returns exactly the vectorised value at that bar, because both run the
same pure-Python kernel (`*_values`). From a bounded window of the last L bars it agrees to 1e-9
relative once L >= `convergence_lookback(name, ...)`. Warm-ups equal TA-Lib's lookbacks."""

from tradeflow.indicators.bands import Bands, bollinger, bollinger_series
from tradeflow.indicators.channels import (
    Channel,
    donchian,
    donchian_series,
    rolling_max,
    rolling_max_series,
    rolling_min,
    rolling_min_series,
)
from tradeflow.indicators.convergence import convergence_lookback
from tradeflow.indicators.crossover import Cross, cross, cross_series
from tradeflow.indicators.momentum import (
    Macd,
    Stoch,
    macd,
    macd_series,
    rsi,
    rsi_series,
    stochastic,
    stochastic_series,
)
from tradeflow.indicators.moving_average import ema, ema_series, sma, sma_series, wma, wma_series
from tradeflow.indicators.trend import Adx, adx, adx_series
from tradeflow.indicators.volatility import atr, atr_series, true_ranges
from tradeflow.indicators.volume import obv, obv_series, session_vwap, session_vwap_series, vwap, vwap_series
from tradeflow.indicators.zones import Pivot, Zone, cluster_pivots, pivot_series, pivots, zones, zones_series

__all__ = [
    "Adx",
    "Bands",
    "Channel",
    "Cross",
    "Macd",
    "Pivot",
    "Stoch",
    "Zone",
    "adx",
    "adx_series",
    "atr",
    "atr_series",
    "bollinger",
    "bollinger_series",
    "cluster_pivots",
    "convergence_lookback",
    "cross",
    "cross_series",
    "donchian",
    "donchian_series",
    "ema",
    "ema_series",
    "macd",
    "macd_series",
    "obv",
    "obv_series",
    "pivot_series",
    "pivots",
    "rolling_max",
    "rolling_max_series",
    "rolling_min",
    "rolling_min_series",
    "rsi",
    "rsi_series",
    "session_vwap",
    "session_vwap_series",
    "sma",
    "sma_series",
    "stochastic",
    "stochastic_series",
    "true_ranges",
    "vwap",
    "vwap_series",
    "wma",
    "wma_series",
    "zones",
    "zones_series",
]
