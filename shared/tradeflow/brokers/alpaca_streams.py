"""Alpaca's websocket streams as the streamer's `BrokerStream`s (see `tradeflow.streaming.source`).

- `AlpacaTradeUpdates`: one account's trade updates (`/stream`: JSON), each turned into a `BrokerOrder`
  with the same mapping as the REST adapter (`alpaca.broker_order`), so a fill seen on the stream and
  the same fill seen by a REST lookup carry the same cumulative ref and are recorded once.
- `AlpacaBars`: 1-minute bars of stocks (`/v2/<feed>`) and crypto pairs (`/v1beta3/crypto/us`),
  msgpack-framed; a symbol with "/" is a crypto pair. Stocks and crypto are two connections; `run`
  ends as soon as either ends.

alpaca-py's own `run()` reconnects forever and swallows errors, which would hide a dead stream from the
streamer's supervisor. So `run()` here drives the SDK's lower-level steps itself (connect,
authenticate, subscribe) and then reads the socket: it returns when the connection closes, raises
`BrokerAuthFailed` when Alpaca refuses the keys, and lets connection errors propagate, leaving
reconnecting and backoff to the supervisor. Every frame received calls `handler.touch()`; a frame that
cannot be understood goes to `handler.malformed(...)` and the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]
from alpaca.data.enums import DataFeed
from alpaca.data.live.crypto import CryptoDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.stream import TradingStream
from websockets.exceptions import ConnectionClosed

from tradeflow.accounts.credentials import AlpacaCredentials
from tradeflow.brokers.alpaca import broker_order, is_crypto
from tradeflow.brokers.endpoints import endpoint_override, websocket_url
from tradeflow.brokers.port import BrokerAuthFailed
from tradeflow.domain import Bar
from tradeflow.domain.types import parse_iso
from tradeflow.streaming.source import StreamHandler

log = logging.getLogger("tradeflow.brokers.alpaca_streams")

BAR_TYPES = ("b", "u")  # a minute bar, and the same bar corrected after late trades (the last one wins)


def _stream_url(path: str) -> str | None:
    """The overridden websocket URL for `path` (local stubs), or None for Alpaca's own."""
    base = endpoint_override("alpaca")
    return websocket_url(base) + path if base else None


async def _subscribed(_: object) -> None:
    """The SDK subscribes only to channels that have a handler; ours reads the socket itself."""


PING_SECONDS = 20.0  # well inside the streamer's silence budget (60 s by default)


async def _frames(sdk: Any, name: str, handler: StreamHandler) -> AsyncIterator[Any]:
    """Every frame of the SDK's websocket until it closes, with a keep-alive beside it: a websocket
    ping every PING_SECONDS whose pong counts as a sign of life (`touch`). A trade-updates stream is
    rightly quiet while nothing trades; the pong tells the watchdog the connection is alive, and a
    half-open connection (no pong) still goes silent and is replaced."""

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            pong = await sdk._ws.ping()
            await asyncio.wait_for(pong, PING_SECONDS)
            handler.touch()

    pinger = asyncio.create_task(keepalive())
    try:
        while (raw := await _next_frame(sdk, name)) is not None:
            handler.touch()
            yield raw
    finally:
        pinger.cancel()
        with contextlib.suppress(BaseException):
            await pinger


async def _next_frame(sdk: Any, name: str) -> Any:
    """The next frame, or None when the connection has closed."""
    try:
        return await sdk._ws.recv()
    except ConnectionClosed as closed:
        frame = closed.rcvd  # the broker's close frame; None when the connection just broke
        log.warning("%s closed: %s", name, f"{frame.code} {frame.reason}".strip() if frame else "no close frame")
        return None


class AlpacaTradeUpdates:
    """The trade-updates stream of one Alpaca account."""

    def __init__(
        self, credentials: AlpacaCredentials, paper: bool = True, *, name: str = "alpaca:trade_updates"
    ) -> None:
        self.name = name
        self._credentials = credentials
        self._paper = paper or credentials.paper  # live only when both the account and the keys say so
        self._sdk: Any = None

    async def run(self, handler: StreamHandler) -> None:
        sdk: Any = TradingStream(
            self._credentials.api_key_id,
            self._credentials.secret_key.get_secret_value(),
            paper=self._paper,
            url_override=_stream_url("/stream"),  # type: ignore[arg-type]  # typed `str = None` in alpaca-py
        )
        self._sdk = sdk
        await sdk._connect()
        try:
            await sdk._auth()
        except (ValueError, AttributeError) as refused:  # "unauthorized", or an answer without data
            raise BrokerAuthFailed(f"Alpaca refused the trade-updates credentials: {refused}", str(refused)) from None
        handler.touch()
        sdk._trade_updates_handler = _subscribed
        await sdk._subscribe_trade_updates()
        async for raw in _frames(sdk, self.name, handler):
            await self._deliver(raw, handler)

    async def _deliver(self, raw: str | bytes, handler: StreamHandler) -> None:
        try:
            message = json.loads(raw)
        except ValueError as error:
            handler.malformed(raw, f"not JSON: {error}")
            return
        if not isinstance(message, dict):
            handler.malformed(raw, "not a JSON object")
            return
        if message.get("stream") != "trade_updates":  # authorization / listening acknowledgements
            return
        try:
            data = message["data"]
            order = broker_order(AlpacaOrder(**data["order"]))
        except (KeyError, TypeError, ValueError) as error:
            handler.malformed(raw, f"trade update not understood: {error}")
            return
        await handler.on_order(order)

    async def close(self) -> None:
        if self._sdk is not None:
            with contextlib.suppress(Exception):
                await self._sdk.close()


class AlpacaBars:
    """1-minute bars of a set of symbols (stocks on `feed`, crypto pairs on the US crypto feed)."""

    def __init__(
        self, credentials: AlpacaCredentials, symbols: Iterable[str], feed: str = "iex", *, name: str = "alpaca:bars"
    ) -> None:
        self.name = name
        self.symbols = sorted(set(symbols))
        if not self.symbols:
            raise ValueError("AlpacaBars needs at least one symbol")
        self.feed = DataFeed(feed)
        self._credentials = credentials
        self._sdks: list[Any] = []

    async def run(self, handler: StreamHandler) -> None:
        stocks = [s for s in self.symbols if not is_crypto(s)]
        pairs = [s for s in self.symbols if is_crypto(s)]
        key, secret = self._credentials.api_key_id, self._credentials.secret_key.get_secret_value()
        streams: list[tuple[Any, list[str]]] = []
        if stocks:
            url = _stream_url(f"/v2/{self.feed.value}")
            streams.append((StockDataStream(key, secret, feed=self.feed, url_override=url), stocks))
        if pairs:
            streams.append((CryptoDataStream(key, secret, url_override=_stream_url("/v1beta3/crypto/us")), pairs))
        self._sdks = [sdk for sdk, _ in streams]
        tasks = [asyncio.create_task(self._consume(sdk, symbols, handler)) for sdk, symbols in streams]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # the first connection's failure, if it failed rather than closed

    async def _consume(self, sdk: Any, symbols: list[str], handler: StreamHandler) -> None:
        await sdk._connect()  # reads Alpaca's "connected" greeting
        handler.touch()
        try:
            await sdk._auth()
        except ValueError as refused:  # auth failed, insufficient subscription ...
            raise BrokerAuthFailed(f"Alpaca refused the market data credentials: {refused}", str(refused)) from None
        handler.touch()
        for symbol in symbols:
            sdk._handlers["bars"][symbol] = _subscribed
            sdk._handlers["updatedBars"][symbol] = _subscribed
        await sdk._send_subscribe_msg()
        async for raw in _frames(sdk, self.name, handler):
            await self._deliver(raw, handler)

    async def _deliver(self, raw: bytes, handler: StreamHandler) -> None:
        try:
            frames = msgpack.unpackb(raw)
        except Exception as error:  # msgpack raises several unrelated types for garbage
            handler.malformed(raw, f"not msgpack: {error}")
            return
        if not isinstance(frames, list):
            handler.malformed(raw, "not a list of messages")
            return
        for message in frames:
            kind = message.get("T") if isinstance(message, dict) else None
            if kind in BAR_TYPES:
                try:
                    bar = _bar(message)
                except (KeyError, TypeError, ValueError) as error:
                    handler.malformed(message, f"bar not understood: {error}")
                    continue
                await handler.on_bar(bar)
            elif kind == "error":
                log.warning("%s: Alpaca error %s: %s", self.name, message.get("code"), message.get("msg"))
            elif kind is None:
                handler.malformed(message, "not a message object")

    async def close(self) -> None:
        for sdk in self._sdks:
            with contextlib.suppress(Exception):
                await sdk.close()


def _bar(message: dict[str, Any]) -> Bar:
    stamp = message["t"]
    ts = stamp.to_datetime() if isinstance(stamp, msgpack.Timestamp) else parse_iso(str(stamp))
    return Bar(
        symbol=str(message["S"]),
        timeframe="1m",
        ts=ts,
        open=message["o"],
        high=message["h"],
        low=message["l"],
        close=message["c"],
        volume=message.get("v", 0),
    )
