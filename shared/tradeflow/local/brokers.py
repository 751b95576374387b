"""The local cloud's brokers: stubs of Alpaca's and Binance's APIs, moved by the replay.

`make run` starts both stubs on free ports and points the real SDKs at them
(`TRADEFLOW_BROKER_ENDPOINTS`), so an Alpaca paper account or a Binance testnet account opened through
the REST API trades locally exactly as it would against the real broker: alpaca-py and ccxt send their
real requests, the execution function submits and looks orders up, the streamer holds the trade-update
and market-data websockets, and reconciliation compares the books with the stub's.

The stubs' market is the replay: every bar the replay publishes (the demo's equities and FX, plus a
market-only BTC/USDT (Binance) and BTC/USD (Alpaca crypto) feed replayed from the shipped real
BTCUSD history) becomes the
stubs' last price, fills their resting orders and goes out on their market-data streams.

Credentials: the Alpaca stub opens a paper account for any key pair it sees first (as signing up for
Alpaca's paper trading would); the Binance stub knows one key pair (HMAC signing needs the secret on
both sides): `BINANCE_KEY` / `BINANCE_SECRET` below, printed in the banner.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from datetime import datetime

from tradeflow.brokers.endpoints import ENDPOINTS_ENV
from tradeflow.domain import Bar
from tradeflow.local.moto_server import free_ports
from tradeflow.local.replay import Feed
from tradeflow.local.stubs.alpaca import DEFAULT_SYMBOLS, AlpacaStub
from tradeflow.local.stubs.binance import DEFAULT_API_KEY as BINANCE_KEY
from tradeflow.local.stubs.binance import DEFAULT_SECRET as BINANCE_SECRET
from tradeflow.local.stubs.binance import BinanceStub, symbol_id

log = logging.getLogger("tradeflow.local")

__all__ = ["BINANCE_KEY", "BINANCE_SECRET", "LocalBrokers", "market_feeds"]

# Market-only feeds for the crypto stubs: real BTC/USD history replayed one bar per minute.
CRYPTO_FEEDS = (("BTC/USDT", "BTCUSD"), ("BTC/USD", "BTCUSD"))


def market_feeds() -> list[Feed]:
    return [Feed(None, symbol, dataset) for symbol, dataset in CRYPTO_FEEDS]


class LocalBrokers:
    def __init__(self, symbols: list[str], clock: Callable[[], datetime], ports: tuple[int, int] | None = None) -> None:
        alpaca_port, binance_port = ports or tuple(free_ports(2))
        tradable = list(dict.fromkeys([*DEFAULT_SYMBOLS, *symbols]))
        self.alpaca = AlpacaStub(alpaca_port, symbols=tradable, clock=clock, open_sign_up=True)
        self.binance = BinanceStub(binance_port)
        self._previous_endpoints: str | None = None
        self._bars: queue.Queue[Bar | None] = queue.Queue()
        self._publisher = threading.Thread(target=self._publish_forever, name="broker-stubs-market", daemon=True)

    @property
    def endpoints(self) -> dict[str, str]:
        return {"alpaca": self.alpaca.base_url, "binance": self.binance.base_url}

    def start(self) -> None:
        self.alpaca.start()
        self.binance.start()
        self._publisher.start()
        self._previous_endpoints = os.environ.get(ENDPOINTS_ENV)
        os.environ[ENDPOINTS_ENV] = json.dumps(self.endpoints)
        log.info("broker stubs: Alpaca at %s, Binance at %s", self.alpaca.base_url, self.binance.base_url)

    def publish(self, bar: Bar) -> None:
        """A replayed bar moves both stubs' markets (each only for the symbols it lists). Handed to the
        publisher thread: the replay clock never waits for the stubs' matching and websocket pushes, and
        the bars still reach each stub in order."""
        if bar.symbol in self.alpaca.assets or symbol_id(bar.symbol) in self.binance.markets:
            self._bars.put(bar)

    def _publish_forever(self) -> None:
        while (bar := self._bars.get()) is not None:
            try:
                if bar.symbol in self.alpaca.assets:
                    self.alpaca.publish_bar(bar.symbol, bar)
                if symbol_id(bar.symbol) in self.binance.markets:
                    self.binance.publish_bar(bar.symbol, bar)
            except Exception:  # a stub hiccup must not stop the market
                log.exception("broker stubs: could not publish %s %s", bar.symbol, bar.ts)

    def stop(self) -> None:
        if self._publisher.is_alive():
            self._bars.put(None)
            self._publisher.join(10)
        self.alpaca.stop()
        self.binance.stop()
        if self._previous_endpoints is None:
            os.environ.pop(ENDPOINTS_ENV, None)
        else:
            os.environ[ENDPOINTS_ENV] = self._previous_endpoints
