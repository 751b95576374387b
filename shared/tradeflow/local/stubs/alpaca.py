"""A local stub of Alpaca: trading REST, market-data REST, the trade-updates stream and the market-data
streams, all on one port, speaking Alpaca's own paths and payloads so alpaca-py runs against it unmodified
(point it there with `TRADEFLOW_BROKER_ENDPOINTS='{"alpaca": "<base_url>"}'`).

What it simulates:
- **Accounts.** One simulated account per API key (all keys in `keys`, with the same starting cash);
  requests and streams are authenticated with the key pair (`APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`
  headers, or the streams' auth messages), and refused with Alpaca's 401 body otherwise.
- **A market.** `publish_bar(symbol, bar)` is the market moving: resting orders the bar reaches fill
  (limit orders at the better of the open and the limit, stop orders once touched at the worse of the
  open and the stop, stop-limits trigger like stops and then fill like limits; `liquidity` caps the
  quantity one bar can fill, which makes partial fills), `day` orders expire when a bar of a later day
  arrives, the bar's close becomes the last price, and the bar goes out on the market-data streams.
  An order that can trade at the last price when it arrives (a market order, a marketable limit, a
  stop already through) fills at once at that price; without a last price a market order waits for the
  next bar's open. `ioc` orders that cannot fill at once are cancelled.
- **Alpaca's refusals** with Alpaca's bodies: unknown or untradable symbols, a reused client order id,
  insufficient buying power (buys) or crypto balance (sells), a non-positive or (for a non-day stock
  order) fractional quantity, sub-penny prices, day orders for crypto.
- **Trade updates** (`/stream`): `new`, `fill`, `partial_fill`, `canceled`, `expired` for the key's
  account, as JSON in binary frames like Alpaca's; **market data** (`/v2/{feed}`, `/v1beta3/crypto/us`):
  msgpack frames, `connected` / `authenticated` / `subscription` acknowledgements and `b` bars.
- **Historical bars** (`/v2/stocks/bars`, `/v1beta3/crypto/us/bars`) from bars loaded with
  `load_history` (e.g. the project's shipped datasets), paginated with `next_page_token`.

Control methods for failure tests (callable from any thread; the state lives on the stub's loop):
`fail_next`, `delay_next_order`, `revoke`, `fill_silently`, `set_position`, `drop_streams`,
`silence_streams`, `send_raw`, and the counters `orders_created`, `requests`, `subscribers`, `orders`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped]
from aiohttp import WSCloseCode, WSMsgType, web

from tradeflow.domain import Bar
from tradeflow.domain.types import tidy
from tradeflow.local.stubs.server import StubServer

T = TypeVar("T")

DEFAULT_KEY_ID = "PKSTUBLOCAL00000KEY1"
DEFAULT_SECRET = "stub-secret-for-the-local-alpaca"
DEFAULT_SYMBOLS = ("GOOG", "AAPL", "MSFT", "SPY", "BTC/USD", "ETH/USD")
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")

OPEN = {"new", "accepted", "pending_new", "partially_filled", "held", "pending_cancel", "accepted_for_bidding"}
TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour", "4h": "4Hour",
              "1d": "1Day", "1w": "1Week", "1mo": "1Month"}  # fmt: skip


def _num(value: Decimal) -> str:
    """Alpaca's number strings: plain notation, no trailing zeros."""
    return format(tidy(value, 9), "f")


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: int, message: str, **extra: str) -> web.Response:
    return web.json_response({"code": code, "message": message, **extra}, status=status)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class StubAsset:
    symbol: str
    tradable: bool = True
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def crypto(self) -> bool:
        return "/" in self.symbol

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": "crypto" if self.crypto else "us_equity",
            "exchange": "CRYPTO" if self.crypto else "NASDAQ",
            "symbol": self.symbol,
            "name": self.symbol,
            "status": "active",
            "tradable": self.tradable,
            "marginable": not self.crypto,
            "shortable": not self.crypto,
            "easy_to_borrow": not self.crypto,
            "fractionable": True,
            "attributes": [],
        }


@dataclass
class StubOrder:
    """An order as Alpaca keeps it; `json()` is Alpaca's order object."""

    client_order_id: str
    symbol: str
    asset: StubAsset
    side: str
    qty: Decimal
    type: str
    time_in_force: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    created_at: datetime
    status: str = "new"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    triggered: bool = False  # a stop-limit whose stop was reached
    session: str | None = None  # the UTC day of the first bar that could fill it (day-order expiry)

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def buy(self) -> bool:
        return self.side == "buy"

    def json(self) -> dict[str, Any]:
        def opt(value: Decimal | None) -> str | None:
            return None if value is None else _num(value)

        def when(value: datetime | None) -> str | None:
            return None if value is None else _ts(value)

        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": _ts(self.created_at),
            "updated_at": _ts(self.updated_at or self.created_at),
            "submitted_at": _ts(self.created_at),
            "filled_at": when(self.filled_at),
            "expired_at": when(self.expired_at),
            "canceled_at": when(self.canceled_at),
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset.id,
            "symbol": self.symbol,
            "asset_class": "crypto" if self.asset.crypto else "us_equity",
            "notional": None,
            "qty": _num(self.qty),
            "filled_qty": _num(self.filled_qty),
            "filled_avg_price": opt(self.filled_avg_price),
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": "buy_to_open" if self.buy else "sell_to_close",
            "time_in_force": self.time_in_force,
            "limit_price": opt(self.limit_price),
            "stop_price": opt(self.stop_price),
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class StubAccount:
    """The simulated brokerage account of one API key."""

    key_id: str
    cash: Decimal
    created_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    orders: dict[str, StubOrder] = field(default_factory=dict)  # by Alpaca id, in submission order
    by_client: dict[str, str] = field(default_factory=dict)
    positions: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # symbol -> (signed qty, avg)


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    body: dict[str, Any] | None


@dataclass(eq=False)
class _TradeConnection:
    ws: web.WebSocketResponse
    account: StubAccount | None = None
    listening: bool = False


@dataclass(eq=False)
class _DataConnection:
    ws: web.WebSocketResponse
    crypto: bool
    authenticated: bool = False
    bars: set[str] = field(default_factory=set)
    updated_bars: set[str] = field(default_factory=set)


_FAILURE_BODIES = {
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error occurred"},
}


class AlpacaStub(StubServer):
    """Alpaca's trading and market-data APIs on `base_url` (streams on `ws_url`)."""

    name = "alpaca"

    def __init__(
        self,
        port: int,
        *,
        keys: Mapping[str, str] | None = None,
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        untradable: Iterable[str] = (),
        cash: Decimal = Decimal(100_000),
        history: Mapping[str, Sequence[Bar]] | None = None,
        clock: Callable[[], datetime] | None = None,
        page_size: int = 10_000,
        open_sign_up: bool = False,
    ) -> None:
        super().__init__(port)
        self.keys = dict(keys or {DEFAULT_KEY_ID: DEFAULT_SECRET})
        # The local cloud's stub: a key pair seen for the first time opens a new paper account (as signing
        # up on Alpaca's dashboard would), so any credentials a developer enters through the API work.
        self.open_sign_up = open_sign_up
        self.starting_cash = cash
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_size = page_size
        self.assets = {s: StubAsset(s) for s in symbols}
        for symbol in untradable:
            self.assets[symbol] = StubAsset(symbol, tradable=False)
        self.history: dict[tuple[str, str], list[Bar]] = {}
        for symbol, bars in (history or {}).items():
            self._load(symbol, bars)
        self._revoked: set[str] = set()
        self._accounts: dict[str, StubAccount] = {}
        self._last: dict[str, Decimal] = {}
        self._failures: list[_Failure] = []
        self._order_delay = 0.0
        self._silent = False
        self._trade_connections: set[_TradeConnection] = set()
        self._data_connections: set[_DataConnection] = set()
        self._requests: Counter[str] = Counter()
        self._orders_created = 0
        self._stopping = asyncio.Event()

    # -- control (from any thread) ---------------------------------------------------------------

    def _on_loop(self, call: Callable[[], T]) -> T:
        async def run() -> T:
            return call()

        return self.run(run())

    def load_history(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Serve these bars (any timeframe; `symbol` is Alpaca's, e.g. GOOG or BTC/USD) from the
        historical bars endpoints."""
        self._on_loop(lambda: self._load(symbol, bars))

    def fail_next(
        self, count: int, status: int, retry_after: float | None = None, body: dict[str, Any] | None = None
    ) -> None:
        """Answer the next `count` REST requests with `status` (Alpaca's body for 429/500, a gateway's
        text for 502-504, or `body`), with a `Retry-After` header when given."""
        self._on_loop(lambda: self._failures.extend(_Failure(status, retry_after, body) for _ in range(count)))

    def delay_next_order(self, seconds: float) -> None:
        """The next order POST creates the order, then answers only after `seconds`."""

        def set_delay() -> None:
            self._order_delay = seconds

        self._on_loop(set_delay)

    def grant(self, key_id: str, secret: str) -> None:
        def add() -> None:
            self.keys[key_id] = secret
            self._revoked.discard(key_id)

        self._on_loop(add)

    def revoke(self, key_id: str) -> None:
        """From now on the key is refused, as Alpaca refuses a key regenerated in its dashboard."""
        self._on_loop(lambda: self._revoked.add(key_id))

    def publish_bar(self, symbol: str, bar: Bar, liquidity: Decimal | None = None) -> None:
        """The market moves: match resting orders (each may fill at most `liquidity`), set the last
        price, push trade updates and the bar to the streams."""
        self.run(self._publish(symbol, bar, liquidity))

    def fill_silently(self, client_order_id: str, qty: Decimal, price: Decimal) -> None:
        """A fill the trade-updates stream never reports (a missed fill, for reconciliation)."""

        def fill() -> None:
            account, order = self._find(client_order_id)
            if not order.open or not 0 < qty <= order.remaining:
                raise ValueError(f"{client_order_id} is {order.status} with {order.remaining} left; cannot fill {qty}")
            self._execute(account, order, qty, price)

        self._on_loop(fill)

    def set_position(self, symbol: str, qty: Decimal, avg_price: Decimal, key_id: str | None = None) -> None:
        """Make the account hold a position no order explains (or none, with qty 0)."""

        def put() -> None:
            account = self._account(key_id or next(iter(self.keys)))
            self._asset(symbol)
            if qty == 0:
                account.positions.pop(symbol, None)
            else:
                account.positions[symbol] = (qty, avg_price)

        self._on_loop(put)

    def drop_streams(self) -> None:
        """Close every websocket (the broker going away)."""
        self.run(self._close_all(WSCloseCode.GOING_AWAY, b"stub dropped the stream"))

    def silence_streams(self, on: bool) -> None:
        """Keep the websockets open but send nothing on them (messages meanwhile are lost)."""

        def set_silent() -> None:
            self._silent = on

        self._on_loop(set_silent)

    def send_raw(self, data: str | bytes, to: str = "trade_updates") -> None:
        """Send this frame as it is on every trade-updates connection, or with `to="market_data"` on
        every authenticated market-data connection (e.g. a malformed message)."""
        self.run(self._send_raw(data, to))

    @property
    def orders_created(self) -> int:
        return self._on_loop(lambda: self._orders_created)

    @property
    def requests(self) -> Counter[str]:
        """REST requests seen, by `"<METHOD> <path>"`."""
        return self._on_loop(lambda: Counter(self._requests))

    def subscribers(self) -> dict[str, int]:
        """Open stream connections: trade-updates listeners, and data connections subscribed to bars."""
        return self._on_loop(
            lambda: {
                "trade_updates": sum(1 for c in self._trade_connections if c.listening),
                "bars": sum(1 for c in self._data_connections if c.bars),
            }
        )

    def orders(self, key_id: str | None = None) -> list[dict[str, Any]]:
        """Every order of the account (Alpaca's JSON), in submission order."""
        return self._on_loop(lambda: [o.json() for o in self._account(key_id or next(iter(self.keys))).orders.values()])

    # -- state -------------------------------------------------------------------------------------

    def _load(self, symbol: str, bars: Sequence[Bar]) -> None:
        for bar in bars:
            self.history.setdefault((symbol, TIMEFRAMES[bar.timeframe]), []).append(bar)
        for key, series in self.history.items():
            if key[0] == symbol:
                series.sort(key=lambda b: b.ts)

    def _asset(self, symbol: str) -> StubAsset:
        if symbol not in self.assets:
            self.assets[symbol] = StubAsset(symbol)
        return self.assets[symbol]

    def _account(self, key_id: str) -> StubAccount:
        if key_id not in self._accounts:
            self._accounts[key_id] = StubAccount(key_id, self.starting_cash, self.clock())
        return self._accounts[key_id]

    def _authorized(self, key_id: object, secret: object) -> bool:
        if self.open_sign_up and isinstance(key_id, str) and isinstance(secret, str) and key_id not in self.keys:
            self.keys[key_id] = secret
        return isinstance(key_id, str) and key_id not in self._revoked and self.keys.get(key_id) == secret

    def _find(self, client_order_id: str) -> tuple[StubAccount, StubOrder]:
        for account in self._accounts.values():
            if client_order_id in account.by_client:
                return account, account.orders[account.by_client[client_order_id]]
        raise KeyError(f"no order {client_order_id} at the Alpaca stub")

    def _committed(self, account: StubAccount) -> Decimal:
        """Cash held back for open buy orders."""
        total = Decimal(0)
        for order in account.orders.values():
            if order.open and order.buy:
                price = order.limit_price or order.stop_price or self._last.get(order.symbol)
                total += order.remaining * (price or Decimal(0))
        return total

    def _buying_power(self, account: StubAccount) -> Decimal:
        return max(account.cash - self._committed(account), Decimal(0))

    # -- the market --------------------------------------------------------------------------------

    @staticmethod
    def _price(order: StubOrder, o: Decimal, h: Decimal, low: Decimal) -> Decimal | None:
        """The price at which a bar (open, high, low) fills the order, or None (may mark a stop-limit
        triggered). Same rules as the paper broker."""
        buy = order.buy
        start = o
        if order.type in ("stop", "stop_limit") and not order.triggered:
            assert order.stop_price is not None
            stop = order.stop_price
            if not (h >= stop if buy else low <= stop):
                return None
            order.triggered = True
            start = max(o, stop) if buy else min(o, stop)
            if order.type == "stop":
                return start
        if order.type in ("market", "stop"):
            return start
        assert order.limit_price is not None
        limit = order.limit_price
        if not (low <= limit if buy else h >= limit):
            return None
        return min(start, limit) if buy else max(start, limit)

    def _execute(self, account: StubAccount, order: StubOrder, qty: Decimal, price: Decimal) -> Decimal:
        """Apply one execution to the order, the cash and the position; returns the position after."""
        now = self.clock()
        total = order.filled_qty + qty
        paid = (order.filled_avg_price or Decimal(0)) * order.filled_qty + price * qty
        order.filled_avg_price = tidy(paid / total, 9)
        order.filled_qty = total
        order.status = "filled" if total >= order.qty else "partially_filled"
        order.updated_at = now
        if order.status == "filled":
            order.filled_at = now
        signed = qty if order.buy else -qty
        account.cash -= signed * price
        held, average = account.positions.get(order.symbol, (Decimal(0), Decimal(0)))
        after = held + signed
        if after == 0:
            account.positions.pop(order.symbol, None)
            return after
        if held == 0 or (held > 0) == (signed > 0):
            average = (abs(held) * average + abs(signed) * price) / abs(after)
        elif (after > 0) != (held > 0):
            average = price  # crossed through zero: a new position at this price
        account.positions[order.symbol] = (after, tidy(average, 9))
        return after

    async def _fill(self, account: StubAccount, order: StubOrder, qty: Decimal, price: Decimal) -> None:
        position = self._execute(account, order, qty, price)
        event = "fill" if order.status == "filled" else "partial_fill"
        await self._trade_update(
            account,
            event,
            order,
            execution_id=str(uuid.uuid4()),
            price=_num(price),
            qty=_num(qty),
            position_qty=_num(position),
        )

    async def _close(self, account: StubAccount, order: StubOrder, status: str) -> None:
        now = self.clock()
        order.status = status
        order.updated_at = now
        if status == "canceled":
            order.canceled_at = now
        elif status == "expired":
            order.expired_at = now
        await self._trade_update(account, status, order)

    async def _publish(self, symbol: str, bar: Bar, liquidity: Decimal | None) -> None:
        day = bar.ts.date().isoformat()
        for account in list(self._accounts.values()):
            for order in list(account.orders.values()):
                if not order.open or order.symbol != symbol:
                    continue
                if order.time_in_force == "day" and order.session is not None and day > order.session:
                    await self._close(account, order, "expired")
                    continue
                order.session = order.session or day
                price = self._price(order, bar.open, bar.high, bar.low)
                if price is None:
                    continue
                qty = order.remaining if liquidity is None else min(order.remaining, liquidity)
                if qty > 0:
                    await self._fill(account, order, qty, price)
        self._last[symbol] = bar.close
        self.history.setdefault((symbol, TIMEFRAMES[bar.timeframe]), []).append(bar)
        await self._broadcast_bar(symbol, bar)

    # -- streams -----------------------------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, data: bytes) -> None:
        if self._silent or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):  # the peer went away meanwhile
            await ws.send_bytes(data)

    async def _trade_update(self, account: StubAccount, event: str, order: StubOrder, **extra: str) -> None:
        message = {
            "stream": "trade_updates",
            "data": {"event": event, "order": order.json(), "timestamp": _ts(self.clock()), **extra},
        }
        frame = json.dumps(message).encode()
        for connection in list(self._trade_connections):
            if connection.listening and connection.account is account:
                await self._send(connection.ws, frame)

    async def _broadcast_bar(self, symbol: str, bar: Bar) -> None:
        crypto = "/" in symbol
        payload = {
            "S": symbol,
            "o": float(bar.open),
            "h": float(bar.high),
            "l": float(bar.low),
            "c": float(bar.close),
            "v": float(bar.volume),
            "t": msgpack.Timestamp.from_datetime(bar.ts),
            "n": 0,
            "vw": float(bar.close),
        }
        for connection in list(self._data_connections):
            if connection.crypto != crypto or not connection.authenticated:
                continue
            frames = []
            if symbol in connection.bars or "*" in connection.bars:
                frames.append({"T": "b", **payload})
            if symbol in connection.updated_bars or "*" in connection.updated_bars:
                frames.append({"T": "u", **payload})
            if frames:
                await self._send(connection.ws, msgpack.packb(frames))

    async def _send_raw(self, data: str | bytes, to: str) -> None:
        if to not in ("trade_updates", "market_data"):
            raise ValueError(f"send_raw goes to 'trade_updates' or 'market_data', not {to!r}")
        sockets = (
            [c.ws for c in self._trade_connections]
            if to == "trade_updates"
            else [c.ws for c in self._data_connections if c.authenticated]
        )
        for ws in sockets:
            if self._silent or ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                if isinstance(data, str):
                    await ws.send_str(data)
                else:
                    await ws.send_bytes(data)

    async def _close_all(self, code: int, message: bytes) -> None:
        sockets = [c.ws for c in self._trade_connections] + [c.ws for c in self._data_connections]
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=code, message=message), 2)

    async def _trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = _TradeConnection(ws)
        self._trade_connections.add(connection)
        try:
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue  # Alpaca ignores what it cannot read
                if not isinstance(data, dict):
                    continue
                reply = self._trade_action(connection, data)
                if reply is not None:
                    await self._send(ws, json.dumps(reply).encode())
                    if reply["data"].get("status") == "unauthorized":
                        await ws.close()
        finally:
            self._trade_connections.discard(connection)
        return ws

    def _trade_action(self, connection: _TradeConnection, data: dict[str, Any]) -> dict[str, Any] | None:
        action = data.get("action")
        raw = data.get("data")
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if action in ("authenticate", "auth"):
            key = body.get("key_id", data.get("key"))
            if not self._authorized(key, body.get("secret_key", data.get("secret"))):
                return {"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}}
            connection.account = self._account(str(key))
            return {"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}}
        if action == "listen":
            if connection.account is None:
                return {"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}}
            streams = [s for s in body.get("streams", []) if s == "trade_updates"]
            connection.listening = bool(streams)
            return {"stream": "listening", "data": {"streams": streams}}
        return None

    async def _data_stream(self, request: web.Request, crypto: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = _DataConnection(ws, crypto)
        self._data_connections.add(connection)
        try:
            await self._send(ws, msgpack.packb([{"T": "success", "msg": "connected"}]))
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    try:
                        data = msgpack.unpackb(message.data)
                    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                        data = None
                elif message.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        data = None
                else:
                    continue
                reply, close = self._data_action(connection, data)
                await self._send(ws, msgpack.packb(reply))
                if close:
                    await ws.close()
        finally:
            self._data_connections.discard(connection)
        return ws

    def _data_action(self, connection: _DataConnection, data: object) -> tuple[list[dict[str, Any]], bool]:
        if not isinstance(data, dict):
            return [{"T": "error", "code": 400, "msg": "invalid syntax"}], False
        action = data.get("action")
        if action == "auth":
            if connection.authenticated:
                return [{"T": "error", "code": 403, "msg": "already authenticated"}], False
            if not self._authorized(data.get("key"), data.get("secret")):
                return [{"T": "error", "code": 402, "msg": "auth failed"}], True
            connection.authenticated = True
            return [{"T": "success", "msg": "authenticated"}], False
        if action not in ("subscribe", "unsubscribe"):
            return [{"T": "error", "code": 400, "msg": "invalid syntax"}], False
        if not connection.authenticated:
            return [{"T": "error", "code": 401, "msg": "not authenticated"}], False
        for channel, held in (("bars", connection.bars), ("updatedBars", connection.updated_bars)):
            symbols = {str(s) for s in data.get(channel) or []}
            if action == "subscribe":
                held.update(symbols)
            else:
                held.difference_update(symbols)
        ack = {"T": "subscription", "trades": [], "quotes": [], "bars": sorted(connection.bars),
               "updatedBars": sorted(connection.updated_bars), "dailyBars": [], "statuses": [], "lulds": [],
               "corrections": [], "cancelErrors": []}  # fmt: skip
        return [ack], False

    # -- REST ----------------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._gate)
        app.router.add_get("/v2/account", self._get_account)
        app.router.add_post("/v2/orders", self._post_order)
        app.router.add_get("/v2/orders", self._list_orders)
        app.router.add_get("/v2/orders:by_client_order_id", self._order_by_client_id)
        app.router.add_get("/v2/orders/{order_id}", self._get_order)
        app.router.add_delete("/v2/orders/{order_id}", self._cancel_order)
        app.router.add_get("/v2/positions", self._list_positions)
        app.router.add_get("/v2/positions/{symbol:.+}", self._get_position)
        app.router.add_get("/v2/assets/{symbol:.+}", self._get_asset)
        app.router.add_get("/v2/stocks/bars", partial(self._bars, crypto=False))
        app.router.add_get("/v1beta3/crypto/{loc}/bars", partial(self._bars, crypto=True))
        app.router.add_get("/stream", self._trade_stream)
        app.router.add_get("/v2/{feed:iex|sip|delayed_sip|test}", partial(self._data_stream, crypto=False))
        app.router.add_get("/v1beta3/crypto/{loc}", partial(self._data_stream, crypto=True))

    async def on_stop(self) -> None:
        self._stopping.set()
        await self._close_all(WSCloseCode.GOING_AWAY, b"stub stopping")

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Count the request, inject a scripted failure, check the API key headers (REST only: the
        streams authenticate with a message)."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            response: web.StreamResponse = await handler(request)
            return response
        self._requests[f"{request.method} {request.path}"] += 1
        if self._failures:
            return self._failure(self._failures.pop(0))
        key = request.headers.get("APCA-API-KEY-ID")
        public = request.path.startswith("/v1beta3/crypto/") and key is None  # crypto data needs no key
        if not public and not self._authorized(key, request.headers.get("APCA-API-SECRET-KEY")):
            return _error(401, 40110000, "request is not authorized")
        response = await handler(request)
        return response

    @staticmethod
    def _failure(failure: _Failure) -> web.Response:
        headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
        body = failure.body or _FAILURE_BODIES.get(failure.status)
        if body is None:  # gateways answer 502/503/504 with text, not Alpaca's JSON
            return web.Response(status=failure.status, text=f"{failure.status} gateway error", headers=headers)
        return web.json_response(body, status=failure.status, headers=headers)

    def _caller(self, request: web.Request) -> StubAccount:
        return self._account(request.headers["APCA-API-KEY-ID"])

    async def _get_account(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        long_value = short_value = Decimal(0)
        for symbol, (qty, average) in account.positions.items():
            value = qty * self._last.get(symbol, average)
            if qty > 0:
                long_value += value
            else:
                short_value += value
        equity = account.cash + long_value + short_value
        power = _num(self._buying_power(account))
        return web.json_response(
            {
                "id": account.id,
                "account_number": f"PA{account.id.replace('-', '')[:10].upper()}",
                "status": "ACTIVE",
                "crypto_status": "ACTIVE",
                "currency": "USD",
                "cash": _num(account.cash),
                "buying_power": power,
                "regt_buying_power": power,
                "daytrading_buying_power": power,
                "non_marginable_buying_power": power,
                "portfolio_value": _num(equity),
                "equity": _num(equity),
                "last_equity": _num(equity),
                "long_market_value": _num(long_value),
                "short_market_value": _num(short_value),
                "initial_margin": "0",
                "maintenance_margin": "0",
                "last_maintenance_margin": "0",
                "sma": "0",
                "daytrade_count": 0,
                "multiplier": "1",
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "trade_suspended_by_user": False,
                "shorting_enabled": True,
                "accrued_fees": "0",
                "pending_transfer_in": "0",
                "pending_transfer_out": "0",
                "created_at": _ts(account.created_at),
            }
        )

    async def _post_order(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        try:
            body = await request.json(loads=partial(json.loads, parse_float=Decimal))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, 40010000, "request body format is invalid")
        refused = self._refusal(account, body)
        if refused is not None:
            return refused
        asset = self.assets[str(body["symbol"])]
        order = StubOrder(
            client_order_id=str(body.get("client_order_id") or uuid.uuid4()),
            symbol=asset.symbol,
            asset=asset,
            side=str(body["side"]),
            qty=Decimal(str(body["qty"])),
            type=str(body["type"]),
            time_in_force=str(body["time_in_force"]),
            limit_price=_decimal(body.get("limit_price")),
            stop_price=_decimal(body.get("stop_price")),
            created_at=self.clock(),
        )
        account.orders[order.id] = order
        account.by_client[order.client_order_id] = order.id
        self._orders_created += 1
        await self._trade_update(account, "new", order)
        await self._on_arrival(account, order)
        delay, self._order_delay = self._order_delay, 0.0
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        return web.json_response(order.json())

    async def _on_arrival(self, account: StubAccount, order: StubOrder) -> None:
        """Trade at the last price if the order can; an ioc order that cannot is cancelled."""
        last = self._last.get(order.symbol)
        price = self._price(order, last, last, last) if last is not None else None
        if price is not None:
            await self._fill(account, order, order.remaining, price)
        elif order.time_in_force in ("ioc", "fok"):
            await self._close(account, order, "canceled")

    def _refusal(self, account: StubAccount, body: dict[str, Any]) -> web.Response | None:
        """Alpaca's answer refusing the order, or None when it is acceptable."""
        symbol = str(body.get("symbol") or "")
        asset = self.assets.get(symbol)
        if asset is None:
            return _error(422, 40010001, f'asset "{symbol}" not found')
        if not asset.tradable:
            return _error(422, 40010001, f"asset {symbol} is not tradable")
        coid = body.get("client_order_id")
        if coid and str(coid) in account.by_client:
            return _error(422, 40010001, "client_order_id must be unique")
        if coid and len(str(coid)) > 128:
            return _error(422, 40010001, "client_order_id must be no more than 128 characters")
        qty = _decimal(body.get("qty"))
        if qty is None or qty <= 0:
            return _error(422, 40010001, "qty must be > 0")
        kind, side, tif = body.get("type"), body.get("side"), body.get("time_in_force")
        if kind not in ("market", "limit", "stop", "stop_limit"):
            return _error(422, 40010001, f"invalid order type: {kind}")
        if side not in ("buy", "sell"):
            return _error(422, 40010001, f"invalid side: {side}")
        if asset.crypto and tif not in ("gtc", "ioc"):
            return _error(422, 42210000, "invalid crypto time_in_force")
        if tif not in ("day", "gtc", "ioc", "fok", "opg", "cls"):
            return _error(422, 40010001, f"invalid time_in_force: {tif}")
        if not asset.crypto and qty != qty.to_integral_value() and tif != "day":
            return _error(422, 42210000, "fractional orders must be DAY orders")
        needs = {"limit_price": kind in ("limit", "stop_limit"), "stop_price": kind in ("stop", "stop_limit")}
        for name, needed in needs.items():
            price = _decimal(body.get(name))
            if needed and (price is None or price <= 0):
                return _error(422, 40010001, f"{name} is required and must be > 0 for {kind} orders")
            if price is not None and not asset.crypto and price >= 1 and price != price.quantize(Decimal("0.01")):
                return _error(
                    422,
                    42210000,
                    f"invalid {name} {_num(price)}. sub-penny increment does not fulfill minimum pricing criteria",
                )
        reference = _decimal(body.get("limit_price")) or _decimal(body.get("stop_price")) or self._last.get(symbol)
        if side == "buy" and reference is not None:
            cost = qty * reference
            power = self._buying_power(account)
            if cost > power:
                return _error(
                    403, 40310000, "insufficient buying power", buying_power=_num(power), cost_basis=_num(cost)
                )
        if side == "sell" and asset.crypto:
            held = account.positions.get(symbol, (Decimal(0), Decimal(0)))[0]
            selling = sum(
                (o.remaining for o in account.orders.values() if o.open and not o.buy and o.symbol == symbol),
                Decimal(0),
            )
            available = max(held - selling, Decimal(0))
            if qty > available:
                base = symbol.split("/", maxsplit=1)[0]
                return _error(
                    403,
                    40310000,
                    f"insufficient balance for {base} (requested: {_num(qty)}, available: {_num(available)})",
                    balance=_num(held),
                    symbol=base,
                    available=_num(available),
                )
        return None

    def _order_or_404(self, account: StubAccount, order_id: str | None) -> StubOrder | web.Response:
        order = account.orders.get(order_id or "")
        if order is None:
            return _error(404, 40410000, "order not found")
        return order

    async def _list_orders(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        query = request.query
        status = query.get("status", "open")
        limit = min(int(query.get("limit", "50")), 500)
        after, until = _parse_time(query.get("after")), _parse_time(query.get("until"))
        symbols = set(query["symbols"].split(",")) if query.get("symbols") else None
        chosen = [
            o
            for o in account.orders.values()
            if (status == "all" or (status == "open") == o.open)
            and (after is None or o.created_at > after)
            and (until is None or o.created_at < until)
            and (symbols is None or o.symbol in symbols)
        ]
        chosen.sort(key=lambda o: o.created_at, reverse=query.get("direction", "desc") == "desc")
        return web.json_response([o.json() for o in chosen[:limit]])

    async def _order_by_client_id(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        found = self._order_or_404(account, account.by_client.get(request.query.get("client_order_id", "")))
        return found if isinstance(found, web.Response) else web.json_response(found.json())

    async def _get_order(self, request: web.Request) -> web.Response:
        found = self._order_or_404(self._caller(request), request.match_info["order_id"])
        return found if isinstance(found, web.Response) else web.json_response(found.json())

    async def _cancel_order(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        found = self._order_or_404(account, request.match_info["order_id"])
        if isinstance(found, web.Response):
            return found
        if not found.open:
            return _error(422, 42210000, f'order is already in "{found.status}" state')
        await self._close(account, found, "canceled")
        return web.Response(status=204)

    def _position_json(self, symbol: str, qty: Decimal, average: Decimal) -> dict[str, Any]:
        asset = self._asset(symbol)
        price = self._last.get(symbol, average)
        base_quote = symbol.replace("/", "") if asset.crypto else symbol  # Alpaca: BTCUSD in positions
        return {
            "asset_id": asset.id,
            "symbol": base_quote,
            "exchange": "CRYPTO" if asset.crypto else "NASDAQ",
            "asset_class": "crypto" if asset.crypto else "us_equity",
            "asset_marginable": not asset.crypto,
            "avg_entry_price": _num(average),
            "qty": _num(qty),
            "qty_available": _num(qty),
            "side": "long" if qty > 0 else "short",
            "market_value": _num(qty * price),
            "cost_basis": _num(qty * average),
            "unrealized_pl": _num(qty * (price - average)),
            "unrealized_plpc": _num((price - average) / average) if average else "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": _num(price),
            "lastday_price": _num(price),
            "change_today": "0",
        }

    async def _list_positions(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        return web.json_response([self._position_json(s, q, a) for s, (q, a) in sorted(account.positions.items())])

    async def _get_position(self, request: web.Request) -> web.Response:
        account = self._caller(request)
        wanted = request.match_info["symbol"]
        for symbol, (qty, average) in account.positions.items():
            if wanted in (symbol, symbol.replace("/", "")):
                return web.json_response(self._position_json(symbol, qty, average))
        return _error(404, 40410000, "position does not exist")

    async def _get_asset(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        asset = self.assets.get(symbol)
        if asset is None:
            return _error(404, 40410000, f"asset not found for {symbol}")
        return web.json_response(asset.json())

    async def _bars(self, request: web.Request, crypto: bool) -> web.Response:
        query = request.query
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            return _error(400, 40010001, "missing symbols")
        timeframe = query.get("timeframe", "")
        try:
            start, end = _parse_time(query.get("start")), _parse_time(query.get("end"))
            limit = int(query["limit"]) if query.get("limit") else None
            offset = int(query.get("page_token") or 0)
        except ValueError as invalid:
            return _error(400, 40010001, f"invalid query: {invalid}")
        rows = [
            (symbol, bar)
            for symbol in symbols
            if ("/" in symbol) == crypto
            for bar in self.history.get((symbol, timeframe), [])
            if (start is None or bar.ts >= start) and (end is None or bar.ts <= end)
        ]
        size = min(limit or self.page_size, self.page_size)
        page = rows[offset : offset + size]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            bars.setdefault(symbol, []).append(
                {"t": _ts(bar.ts), "o": float(bar.open), "h": float(bar.high), "l": float(bar.low),
                 "c": float(bar.close), "v": float(bar.volume), "n": 0, "vw": float(bar.close)}
            )  # fmt: skip
        following = offset + len(page)
        token = str(following) if following < len(rows) else None
        return web.json_response({"bars": bars, "next_page_token": token})


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
