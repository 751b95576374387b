"""The streamer's ccxt streams: an exchange's websockets through ccxt.pro (`BrokerStream`, see
`tradeflow.streaming.source`).

- `CcxtOhlcv(account, credentials, symbols)`: `watch_ohlcv(symbol, "1m")` per symbol; every candle
  received becomes `handler.on_bar(Bar)`. The forming candle arrives again with each update (the same
  `ts`): the streamer keeps the last.
- `CcxtOrders(account, credentials, symbols)`: `watch_orders()` for the account; every order update
  becomes `handler.on_order(BrokerOrder)` with its executions as a running total (see `BrokerFill`).
  An executionReport carries only its own trade's commission, so the fee is what this connection has
  seen of the order's trades (in the quote currency): never more than was paid, so the books, which
  record only fees beyond those already recorded, never count one twice.

How a run ends, and what it reports
- `run(handler)` connects, subscribes and delivers until the connection ends. When the websocket drops,
  ccxt's watch call raises; `run` raises `BrokerUnavailable` (from ccxt's NetworkError) so the
  supervisor reconnects with backoff; refused credentials raise `BrokerAuthFailed`. An exchange without
  the watch method raises `StreamUnsupported` naming the exchange (the streamer then polls instead).
- Every frame received (data, acknowledgements, pings) calls `handler.touch()`.
- Malformed data: ccxt parses each frame inside its receive loop, and an exception there would end the
  loop without a word (the connection stays open, nothing more is delivered). Each connection's frame
  handler is therefore guarded: a frame ccxt cannot parse goes to `handler.malformed(frame, reason)` and
  the loop goes on; so does a candle or an order that parses but cannot be one of ours.
- `close()` closes the exchange's connections (after `run` ended or was cancelled).

Websocket URLs follow the same endpoint override as REST (`TRADEFLOW_BROKER_ENDPOINTS`): ccxt keeps
them in `urls["api"]["ws"]`, which `build_exchange` rewrites (`ws://` + the stub's host, paths kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NoReturn

import ccxt
import ccxt.pro

from tradeflow.accounts.credentials import CcxtCredentials
from tradeflow.brokers.ccxt_exchange import (
    build_exchange,
    decimal,
    sandbox_requested,
    timeout_seconds,
    to_bar,
    to_broker_order,
)
from tradeflow.brokers.port import BrokerAuthFailed, BrokerUnavailable
from tradeflow.domain import Account
from tradeflow.streaming.source import StreamHandler


class StreamUnsupported(NotImplementedError):
    """The exchange has no websocket method for this stream (poll its REST API instead)."""

    def __init__(self, exchange_id: str, method: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{exchange_id} has no {method} in ccxt.pro: poll its REST API instead")
        self.exchange_id = exchange_id
        self.method = method


def _frame_text(message: Any) -> object:
    """What to log of a websocket frame (aiohttp's WSMessage, or whatever ccxt was handed)."""
    data = getattr(message, "data", message)
    return data.decode(errors="replace") if isinstance(data, bytes) else data


class _CcxtStream:
    """One ccxt.pro exchange instance (its websocket connections) for one account."""

    kind = "stream"

    def __init__(self, account: Account, credentials: CcxtCredentials, symbols: Iterable[str]) -> None:
        self.account = account
        self.credentials = credentials
        self.symbols = sorted(set(symbols))
        self.exchange: Any | None = None
        self.name = f"ccxt:{credentials.exchange}:{self.kind}:{account.tenant_id}/{account.account_id}"

    def _open(self, handler: StreamHandler, watch_method: str) -> Any:
        if self.exchange is not None:
            raise RuntimeError(f"{self.name} is already running; close() it first")
        if getattr(ccxt.pro, self.credentials.exchange, None) is None:
            raise StreamUnsupported(self.credentials.exchange, "websocket support")
        exchange = build_exchange(
            ccxt.pro,
            self.credentials,
            sandbox=sandbox_requested(self.account, self.credentials),
            timeout=timeout_seconds(self.account),
        )
        self.exchange = exchange
        if not exchange.has.get(watch_method):
            raise StreamUnsupported(exchange.id, watch_method)
        _guard_frames(exchange, handler)
        return exchange

    async def close(self) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            await exchange.close()

    def _reraise(self, error: Exception) -> NoReturn:
        mapped = self._ended(error)
        if mapped is error:
            raise error
        raise mapped from error

    def _ended(self, error: Exception) -> Exception:
        """ccxt's reason for a stream's end, as ours (the caller raises it from the original). The reason
        may sit in the exception's context: ccxt 4.5 masks a refused user-data subscription with a
        KeyError raised while it cleans up after it."""
        reason: BaseException | None = error
        while reason is not None and not isinstance(reason, ccxt.BaseError):
            reason = reason.__cause__ or reason.__context__
        if isinstance(reason, ccxt.AuthenticationError):
            return BrokerAuthFailed(f"{self.name}: the exchange refused the credentials", str(reason))
        if isinstance(reason, ccxt.NotSupported):
            return StreamUnsupported(self.credentials.exchange, self.kind, str(reason))
        if isinstance(reason, ccxt.NetworkError):
            return BrokerUnavailable(f"{self.name}: connection ended", str(reason))
        return error


KEEPALIVE_MS = 20_000  # ccxt's ping interval on our connections; its pongs are signs of life


def _guard_frames(exchange: Any, handler: StreamHandler) -> None:
    """Wrap the frame handler of each websocket connection the exchange opens: touch the handler, and
    report a frame ccxt fails on instead of letting the exception end ccxt's receive loop.

    ccxt pings each connection every `keepAlive` ms (Binance's class: 3 minutes) and fails the
    connection itself when pongs stop. An order stream is rightly quiet while nothing trades, so the
    interval is shortened to KEEPALIVE_MS: the pongs (which reach the frame handler) keep the streamer's
    silence watchdog satisfied while the connection is alive, and a half-open one is still caught."""
    open_client = exchange.client

    def client(url: str) -> Any:
        connection = open_client(url)
        if connection.keepAlive and connection.keepAlive > KEEPALIVE_MS:
            connection.keepAlive = KEEPALIVE_MS
        if not getattr(connection, "_tradeflow_guarded", False):
            parse = connection.handle_message

            def guarded(message: Any) -> None:
                handler.touch()
                try:
                    parse(message)
                except Exception as error:  # one bad frame must not end the stream
                    handler.malformed(_frame_text(message), f"{type(error).__name__}: {error}")

            connection.handle_message = guarded
            connection._tradeflow_guarded = True
        return connection

    exchange.client = client


class CcxtOhlcv(_CcxtStream):
    """1-minute candles of `symbols` (any timeframe the exchange streams, by `timeframe`)."""

    kind = "ohlcv"

    def __init__(
        self, account: Account, credentials: CcxtCredentials, symbols: Iterable[str], timeframe: str = "1m"
    ) -> None:
        super().__init__(account, credentials, symbols)
        self.timeframe = timeframe

    async def run(self, handler: StreamHandler) -> None:
        exchange = self._open(handler, "watchOHLCV")
        if not self.symbols:
            raise ValueError(f"{self.name}: no symbols to stream")
        watchers = [asyncio.create_task(self._watch(exchange, symbol, handler)) for symbol in self.symbols]
        try:
            done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        for watcher in done:
            error = watcher.exception()
            if error is not None:
                raise error

    async def _watch(self, exchange: Any, symbol: str, handler: StreamHandler) -> None:
        while True:
            try:
                candles = await exchange.watch_ohlcv(symbol, self.timeframe)
            except Exception as error:
                self._reraise(error)
            for candle in candles:
                try:
                    bar = to_bar(symbol, self.timeframe, candle)
                except ValueError as bad:
                    handler.malformed(candle, f"{symbol} candle: {bad}")
                    continue
                await handler.on_bar(bar)


class CcxtOrders(_CcxtStream):
    """The account's order updates (all its symbols)."""

    kind = "orders"

    def __init__(self, account: Account, credentials: CcxtCredentials, symbols: Iterable[str] = ()) -> None:
        super().__init__(account, credentials, symbols)
        self._fees: dict[str, dict[str, Decimal]] = {}  # order id -> trade id -> fee in the quote currency

    async def run(self, handler: StreamHandler) -> None:
        exchange = self._open(handler, "watchOrders")
        while True:
            try:
                orders = await exchange.watch_orders()
            except Exception as error:
                self._reraise(error)
            for raw in orders:
                try:
                    order = to_broker_order(raw, fee=self._fee_so_far(raw))
                except (ValueError, TypeError, AttributeError) as bad:
                    handler.malformed(raw.get("info", raw) if isinstance(raw, Mapping) else raw, str(bad))
                    continue
                if order.status.final:
                    self._fees.pop(order.broker_order_id, None)
                await handler.on_order(order)

    def _fee_so_far(self, raw: Mapping[str, Any]) -> Decimal | None:
        """The commissions of the order's trades this connection has seen (Binance's executionReport:
        trade id `t`, commission `n` in asset `N`), in the quote currency; None for other exchanges'
        updates (the fee ccxt reports with the order is used)."""
        info = raw.get("info")
        if not isinstance(info, Mapping) or info.get("e") != "executionReport":
            return None
        seen = self._fees.setdefault(str(raw.get("id")), {})
        if info.get("x") == "TRADE" and info.get("t") not in (None, -1):
            commission = decimal(info.get("n")) or Decimal(0)
            base, _, quote = str(raw.get("symbol") or "").partition("/")
            asset = info.get("N")
            if asset == quote:
                seen[str(info["t"])] = commission
            elif asset == base:
                seen[str(info["t"])] = commission * (decimal(info.get("L")) or Decimal(0))
        return sum(seen.values(), Decimal(0))
