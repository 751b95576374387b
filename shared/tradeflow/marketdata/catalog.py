"""The recorded datasets shipped inside the package (provenance and licences in datasets/README.md).

They are real market prices, not synthetic ones, so demos replay markets that actually happened and
tests can check known values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tradeflow.domain.bars import Bar
from tradeflow.marketdata.files import load_bars_csv

AssetClass = Literal["equity", "fx", "crypto"]

# A plain path (not importlib.resources): the package is always installed unzipped, Lambda included.
DATASETS_DIR = Path(__file__).parent / "datasets"


@dataclass(frozen=True, slots=True)
class Dataset:
    """One shipped CSV of bars for one symbol at one timeframe."""

    symbol: str
    timeframe: str
    asset_class: AssetClass
    path: Path
    description: str


def _dataset(symbol: str, timeframe: str, asset_class: AssetClass, description: str) -> Dataset:
    return Dataset(symbol, timeframe, asset_class, DATASETS_DIR / f"{symbol}_{timeframe}.csv", description)


DATASETS: dict[str, Dataset] = {
    d.symbol: d
    for d in (
        _dataset("GOOG", "1d", "equity", "Alphabet (Google) class A on NASDAQ, USD, 2004-08-19 to 2013-03-01."),
        _dataset(
            "SPY",
            "1d",
            "equity",
            "SPDR S&P 500 ETF on NYSE Arca, USD, dividend-adjusted, 1993-01-29 to 2021-08-19.",
        ),
        _dataset("ASML.AS", "1d", "equity", "ASML Holding on Euronext Amsterdam, EUR, 2010-01-04 to 2013-01-25."),
        _dataset("002032.SZ", "1d", "equity", "Zhejiang Supor on the Shenzhen exchange, CNY, 2004 to 2016."),
        _dataset("EURUSD", "1h", "fx", "Euro / US dollar spot, hourly, 2017-04-19 to 2018-02-07 (times UTC)."),
        _dataset("BTCUSD", "1mo", "crypto", "Bitcoin / US dollar index, monthly, 2012-01 to 2024-12."),
    )
}


def dataset(symbol: str) -> Dataset:
    """The shipped dataset for `symbol`; KeyError naming the available symbols if there is none."""
    try:
        return DATASETS[symbol]
    except KeyError:
        available = ", ".join(sorted(DATASETS))
        raise KeyError(f"no shipped market data for {symbol!r}; available: {available}") from None


@lru_cache(maxsize=32)  # bounded, though there are only a handful of datasets
def _load(symbol: str) -> tuple[Bar, ...]:
    info = dataset(symbol)
    return tuple(load_bars_csv(info.path, info.symbol, info.timeframe))


def load_dataset(symbol: str) -> list[Bar]:
    """All bars of a shipped dataset, oldest first; parsed once per process (bars are immutable)."""
    return list(_load(symbol))
