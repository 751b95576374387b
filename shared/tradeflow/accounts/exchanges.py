"""The ccxt exchanges a broker account may name, as a static list.

The API validates `exchange` without importing ccxt (design rule 9: the API function carries no broker
SDK, and ccxt's import costs seconds). The list is the established subset of ccxt's `exchanges` (4.5);
`tests/integration/test_broker_credentials.py` checks every id against `ccxt.exchanges` whenever ccxt is
installed, so an id ccxt drops fails the tests instead of failing at order time.
"""

from __future__ import annotations

CCXT_EXCHANGES: frozenset[str] = frozenset(
    {
        "binance",
        "binancecoinm",
        "binanceus",
        "binanceusdm",
        "bingx",
        "bitbank",
        "bitfinex",
        "bitflyer",
        "bitget",
        "bithumb",
        "bitso",
        "bitstamp",
        "bitvavo",
        "bybit",
        "coinbase",
        "coinbaseexchange",
        "coinbaseinternational",
        "coincheck",
        "cryptocom",
        "deribit",
        "gate",
        "gemini",
        "htx",
        "hyperliquid",
        "independentreserve",
        "kraken",
        "krakenfutures",
        "kucoin",
        "kucoinfutures",
        "luno",
        "mexc",
        "okx",
        "phemex",
        "poloniex",
        "upbit",
        "whitebit",
        "woo",
    }
)


def known_exchange(exchange: str) -> bool:
    return exchange in CCXT_EXCHANGES
