"""Recorded historical OHLCV market data and its strict loader.

Real bars replay history into the local cloud and give tests known prices. The loader (`files`)
uses only the stdlib so Lambda cold starts stay cheap; the bundled datasets live in `catalog`.
"""

from tradeflow.marketdata.catalog import DATASETS, Dataset, dataset, load_dataset
from tradeflow.marketdata.files import MarketDataError, load_bars_csv

__all__ = ["DATASETS", "Dataset", "MarketDataError", "dataset", "load_bars_csv", "load_dataset"]
