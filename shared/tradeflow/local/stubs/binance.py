"""A local stand-in for Binance's spot API (its testnet, as ccxt's sandbox mode sees it).

ccxt's `binance` class (REST) and `ccxt.pro.binance` (websockets) run unmodified against it once their
URLs point here (`TRADEFLOW_BROKER_ENDPOINTS={"binance": "http://127.0.0.1:<port>"}`): the paths,
parameters, signatures, payloads and error codes are Binance's own.

- REST (`/api/v3/...`): `exchangeInfo` with real filters (PRICE_FILTER, LOT_SIZE, NOTIONAL), `time`,
  `ping`, `klines`, `ticker/24hr`, `ticker/price`; signed (HMAC-SHA256 over the query and body,
  `X-MBX-APIKEY`, `timestamp` within `recvWindow`): `order` POST/GET/DELETE, `openOrders`, `allOrders`,
  `myTrades`, `account`; `userDataStream` (listen keys). Errors as Binance sends them: -2015 (401) for
  a wrong or revoked key, -1022 bad signature, -1121 unknown symbol, -1013 filter failures, -2010
  insufficient balance / duplicate client order id of an open order, -2013 / -2011 unknown order,
  -1003 (429 + `Retry-After`) when rate-limited.
- Websockets: market streams on `/ws`, `/ws/<n>` and `/stream` (SUBSCRIBE `<symbol>@kline_<interval>`,
  kline events), the WebSocket API on `/ws-api/v3` (`userDataStream.subscribe.signature`, which ccxt
  4.5 uses for spot; events wrapped as `{"subscriptionId", "event"}`) and legacy listen-key user
  streams on `/ws/<listenKey>`, both emitting `executionReport` events.
- A simulated market: `publish_bar` sets the last price, fills the resting orders the bar reaches
  (limits at the better of open and limit, stops when touched), pushes the kline and the
  executionReports. Market orders fill at once at the last price; marketable limit orders fill at the
  last price; IOC/FOK limits that cannot fill expire. Commission is `fee_rate` of the notional, charged
  in the quote asset on both sides (a simplification: Binance charges a buyer in the base asset).
  Balances are checked and locked like Binance's (free/locked).
- Control methods, callable from any thread (the state lives on the stub's own loop): `fail_next`,
  `delay_next_order`, `revoke`, `fill` / `fill_silently`, `set_balance`, `add_market`, `seed_bars`,
  `drop_streams`, `silence_streams`, `send_raw`; counters `orders_created`, `requests` (by
  "METHOD /path"), `order_requests` (the parameters of every order POST) and `unknown_requests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tradeflow.domain import Bar
from tradeflow.local.stubs.server import StubServer

DEFAULT_API_KEY = "binance-stub-key-0123456789abcdef"
DEFAULT_SECRET = "binance-stub-secret-0123456789abcdef"
EIGHT = Decimal("0.00000001")
CLIENT_ORDER_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
ALL_ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
INTERVALS_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
OPEN = ("NEW", "PARTIALLY_FILLED")
CANCEL_FIELDS = (
    "symbol", "orderId", "orderListId", "price", "origQty", "executedQty", "origQuoteOrderQty",
    "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "selfTradePreventionMode",
)  # fmt: skip
RATE_LIMIT_MSG = (
    "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Compact JSON, as Binance writes it (`{"code":-2015,"msg":...}`)."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(EIGHT):f}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def symbol_id(symbol: str) -> str:
    """`BTC/USDT` or `BTCUSDT` -> `BTCUSDT` (Binance's market id)."""
    return symbol.replace("/", "").upper()


class BinanceApiError(Exception):
    """An error answered the way Binance answers it: `{"code": ..., "msg": ...}` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class StubMarket:
    """One spot market and its exchangeInfo filters."""

    base: str
    quote: str
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_notional: Decimal = Decimal("5")
    order_types: tuple[str, ...] = ALL_ORDER_TYPES

    @property
    def id(self) -> str:
        return self.base + self.quote

    def info(self) -> dict[str, Any]:
        return {
            "symbol": self.id,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(self.order_types),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _fmt(self.min_price),
                    "maxPrice": _fmt(self.max_price),
                    "tickSize": _fmt(self.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _fmt(self.min_qty),
                    "maxQty": _fmt(self.max_qty),
                    "stepSize": _fmt(self.step_size),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": _fmt(self.max_qty),
                 "stepSize": "0.00000000"},
                {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
                 "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
                {"filterType": "NOTIONAL", "minNotional": _fmt(self.min_notional), "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }  # fmt: skip


@dataclass
class StubOrder:
    order_id: int
    symbol: str
    client_order_id: str
    side: str  # BUY | SELL
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal  # 0 for market and stop-market orders
    stop_price: Decimal  # 0 unless a stop
    created_ms: int
    updated_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    triggered: bool = False
    locked: Decimal = Decimal(0)  # what the order holds back: quote for a buy, base for a sell

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def is_stop(self) -> bool:
        return self.type in ("STOP_LOSS", "STOP_LOSS_LIMIT")

    def rest(self) -> dict[str, Any]:
        """The order as `GET /api/v3/order` shows it."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": _fmt(self.price),
            "origQty": _fmt(self.quantity),
            "executedQty": _fmt(self.executed),
            "cummulativeQuoteQty": _fmt(self.quote_executed),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": _fmt(self.stop_price),
            "icebergQty": "0.00000000",
            "time": self.created_ms,
            "updateTime": self.updated_ms,
            "isWorking": not self.is_stop or self.triggered,
            "workingTime": self.created_ms if not self.is_stop or self.triggered else -1,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class StubTrade:
    trade_id: int
    order: StubOrder
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    ts: int

    def rest(self) -> dict[str, Any]:
        return {
            "symbol": self.order.symbol,
            "id": self.trade_id,
            "orderId": self.order.order_id,
            "orderListId": -1,
            "price": _fmt(self.price),
            "qty": _fmt(self.qty),
            "quoteQty": _fmt(self.price * self.qty),
            "commission": _fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.ts,
            "isBuyer": self.order.side == "BUY",
            "isMaker": False,
            "isBestMatch": True,
        }


@dataclass
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    path: str | None


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    kind: Literal["market", "user"]
    combined: bool = False  # /stream: events wrapped as {"stream", "data"}
    streams: set[str] = field(default_factory=set)
    listen_key: bool = False  # a legacy /ws/<listenKey> user stream (events sent bare)
    subscription_id: int | None = None  # the WebSocket API's user-data subscription

    @property
    def ready(self) -> bool:
        """Subscribed to something (market streams, or the account's user data)."""
        if self.kind == "market":
            return bool(self.streams)
        return self.listen_key or self.subscription_id is not None


def _default_markets() -> dict[str, StubMarket]:
    markets = [
        StubMarket("BTC", "USDT"),
        StubMarket("ETH", "USDT", step_size=Decimal("0.0001"), min_qty=Decimal("0.001")),
    ]
    return {m.id: m for m in markets}


class BinanceStub(StubServer):
    """Binance spot (testnet) on 127.0.0.1:<port>; see the module docstring."""

    name = "binance"

    def __init__(
        self,
        port: int,
        *,
        api_key: str = DEFAULT_API_KEY,
        secret: str = DEFAULT_SECRET,
        fee_rate: Decimal = Decimal("0.001"),
        balances: dict[str, Decimal] | None = None,
    ) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.secret = secret
        self.fee_rate = fee_rate
        self.markets = _default_markets()
        self.balances: dict[str, Balance] = {
            asset: Balance(free=amount) for asset, amount in (balances or {"USDT": Decimal(10_000)}).items()
        }
        self.orders: dict[int, StubOrder] = {}
        self.trades: list[StubTrade] = []
        self.klines: dict[tuple[str, str], dict[int, tuple[Bar, bool]]] = {}
        self.last_price: dict[str, Decimal] = {}
        self.revoked: set[str] = set()
        self.listen_keys: set[str] = set()
        self.silenced = False
        # counters, read by tests from their own thread
        self.orders_created = 0
        self.requests: Counter[str] = Counter()
        self.order_requests: list[dict[str, str]] = []
        self.unknown_requests: list[str] = []
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_subscription = 0
        self._failures: list[_Failure] = []
        self._order_delay: float | None = None
        self._sockets: set[_Socket] = set()

    # -- control methods (any thread) --------------------------------------------------------------

    def add_market(self, market: StubMarket) -> None:
        """Add or replace a market (before the client loads the markets)."""

        async def apply() -> None:
            self.markets[market.id] = market

        self.run(apply())

    def set_balance(self, asset: str, free: Decimal, locked: Decimal = Decimal(0)) -> None:
        """Set a balance outright (e.g. an unexplained position, or funds moved outside tradeflow)."""

        async def apply() -> None:
            self.balances[asset] = Balance(free=Decimal(free), locked=Decimal(locked))

        self.run(apply())

    def balance(self, asset: str) -> Balance:
        async def read() -> Balance:
            found = self.balances.get(asset, Balance())
            return Balance(found.free, found.locked)

        return self.run(read())

    def fail_next(self, count: int, status: int, retry_after: int | None = None, path: str | None = None) -> None:
        """The next `count` REST requests (to `path` only, when given) fail with `status`: 429/418 with
        Binance's -1003 body and a `Retry-After` header, 5xx with a bare error page."""

        async def apply() -> None:
            self._failures.extend(_Failure(status, retry_after, path) for _ in range(count))

        self.run(apply())

    def delay_next_order(self, seconds: float) -> None:
        """The next order POST is processed at once (the order exists) but answered `seconds` late."""

        async def apply() -> None:
            self._order_delay = seconds

        self.run(apply())

    def revoke(self, api_key: str) -> None:
        """From now on the key is refused (-2015, REST and the WebSocket API alike)."""

        async def apply() -> None:
            self.revoked.add(api_key)

        self.run(apply())

    def fill(self, client_order_id: str, qty: Decimal, price: Decimal, *, silent: bool = False) -> dict[str, Any]:
        """Execute `qty` of the open order at `price` (a partial fill when less than what remains);
        `silent`: no executionReport (a fill the stream misses). Returns the order as REST shows it."""

        async def apply() -> dict[str, Any]:
            order = self._find_client(client_order_id, open_only=True)
            if order is None:
                raise KeyError(f"no open order {client_order_id}")
            await self._execute(order, min(Decimal(qty), order.remaining), Decimal(price), report=not silent)
            return order.rest()

        return self.run(apply())

    def fill_silently(self, client_order_id: str, qty: Decimal, price: Decimal) -> dict[str, Any]:
        """A fill no stream reports (what reconciliation must find)."""
        return self.fill(client_order_id, qty, price, silent=True)

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        """The most recent order with this client order id, as `GET /api/v3/order` shows it."""

        async def read() -> dict[str, Any] | None:
            found = self._find_client(client_order_id)
            return found.rest() if found else None

        return self.run(read())

    def seed_bars(self, symbol: str, bars: Iterable[Bar]) -> None:
        """History for `klines`, without matching or stream events; the last close becomes the price."""

        async def apply() -> None:
            for bar in bars:
                self._store_bar(symbol_id(symbol), bar, closed=True)

        self.run(apply())

    def publish_bar(self, symbol: str, bar: Bar, *, closed: bool = True) -> None:
        """A new (or updated, when not `closed`) candle: stored, the last price set, resting orders
        matched against it, its kline event and the resulting executionReports pushed."""
        self.run(self._publish(symbol_id(symbol), bar, closed))

    def drop_streams(self) -> None:
        """Close every websocket (clients see the connection end)."""

        async def apply() -> None:
            for socket in list(self._sockets):
                await socket.ws.close(code=1001, message=b"stub dropped the stream")

        self.run(apply())

    def silence_streams(self, on: bool = True) -> None:
        """Keep the websockets open but send nothing on them (a connected-but-dead stream)."""

        async def apply() -> None:
            self.silenced = on

        self.run(apply())

    def send_raw(self, frame: str | dict[str, Any], stream: Literal["user", "market"] = "user") -> int:
        """Send `frame` as is (text; a dict is JSON-encoded) on every `stream` socket; returns how many."""
        text = frame if isinstance(frame, str) else _dumps(frame)

        async def apply() -> int:
            sent = 0
            for socket in list(self._sockets):
                if socket.kind == stream and not socket.ws.closed:
                    await socket.ws.send_str(text)
                    sent += 1
            return sent

        return self.run(apply())

    def stream_count(self, kind: Literal["user", "market"]) -> int:
        """Open sockets of `kind` that have subscribed to something."""

        async def read() -> int:
            return sum(1 for s in self._sockets if s.kind == kind and not s.ws.closed and s.ready)

        return self.run(read())

    def market_streams(self) -> set[str]:
        """The market streams open sockets are subscribed to (e.g. `btcusdt@kline_1m`)."""

        async def read() -> set[str]:
            return {name for s in self._sockets if s.kind == "market" and not s.ws.closed for name in s.streams}

        return self.run(read())

    async def on_stop(self) -> None:
        for socket in list(self._sockets):
            await socket.ws.close()

    # -- routes ------------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._middleware)
        public: list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]] = [
            ("GET", "/api/v3/ping", self._ping),
            ("GET", "/api/v3/time", self._time),
            ("GET", "/api/v3/exchangeInfo", self._exchange_info),
            ("GET", "/api/v3/klines", self._klines),
            ("GET", "/api/v3/ticker/24hr", self._ticker_24hr),
            ("GET", "/api/v3/ticker/price", self._ticker_price),
        ]
        signed: list[tuple[str, str, Callable[[dict[str, str]], Awaitable[Any]]]] = [
            ("POST", "/api/v3/order", self._new_order),
            ("GET", "/api/v3/order", self._query_order),
            ("DELETE", "/api/v3/order", self._cancel_order),
            ("GET", "/api/v3/openOrders", self._open_orders),
            ("GET", "/api/v3/allOrders", self._all_orders),
            ("GET", "/api/v3/myTrades", self._my_trades),
            ("GET", "/api/v3/account", self._account),
        ]
        for method, path, public_handler in public:
            app.router.add_route(method, path, self._public(public_handler))
        for method, path, signed_handler in signed:
            app.router.add_route(method, path, self._signed(signed_handler))
        for method in ("POST", "PUT", "DELETE"):
            app.router.add_route(method, "/api/v3/userDataStream", self._user_data_stream)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/ws", self._market_ws)
        app.router.add_get("/ws/{name}", self._market_ws)
        app.router.add_get("/stream", self._market_ws)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        self.requests[f"{request.method} {request.path}"] += 1
        failure = next((f for f in self._failures if f.path in (None, request.path)), None)
        if failure is not None:
            self._failures.remove(failure)
            return self._failure(failure)
        try:
            return await handler(request)
        except BinanceApiError as error:
            return _json({"code": error.code, "msg": error.msg}, status=error.status)

    @staticmethod
    def _failure(failure: _Failure) -> web.Response:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        if failure.status in (418, 429):
            return _json({"code": -1003, "msg": RATE_LIMIT_MSG}, status=failure.status, headers=headers)
        if failure.status >= 500:
            return web.Response(status=failure.status, text="<html><body>Service Unavailable</body></html>",
                                content_type="text/html", headers=headers)  # fmt: skip
        body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        return _json(body, status=failure.status, headers=headers)

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_requests.append(f"{request.method} {request.path}")
        return _json({"code": -1000, "msg": f"stub: no route for {request.path}"}, status=404)

    def _public(
        self, handler: Callable[[web.Request], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            return _json(await handler(request))

        return route

    def _signed(
        self, handler: Callable[[dict[str, str]], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            params = await self._verify(request)
            return _json(await handler(params))

        return route

    # -- authentication ----------------------------------------------------------------------------

    def _check_key(self, api_key: str | None) -> None:
        if not api_key:
            raise BinanceApiError(-2014, "API-key format invalid.", 401)
        if api_key != self.api_key or api_key in self.revoked:
            raise BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)

    @staticmethod
    def _check_time(params: dict[str, str]) -> None:
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise BinanceApiError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        now = _now_ms()
        if stamp > now + 1000:
            raise BinanceApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - stamp > min(window, 60_000):
            raise BinanceApiError(-1021, "Timestamp for this request is outside of the recvWindow.")

    async def _verify(self, request: web.Request) -> dict[str, str]:
        """Binance's SIGNED check: key, then HMAC-SHA256 of the query string + body, then the time."""
        self._check_key(request.headers.get("X-MBX-APIKEY"))
        query = request.rel_url.raw_query_string
        body = (await request.text()) if request.can_read_body else ""
        total = query + body
        signed_part, marker, signature = total.rpartition("&signature=")
        if not marker:
            raise BinanceApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(self.secret.encode(), signed_part.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise BinanceApiError(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(signed_part, keep_blank_values=True))
        self._check_time(params)
        return params

    def _verify_ws(self, params: dict[str, Any]) -> None:
        """The WebSocket API's signature: HMAC of the params sorted by name, `k=v` joined by `&`."""
        self._check_key(str(params.get("apiKey", "")) or None)
        unsigned = {k: v for k, v in params.items() if k != "signature"}
        payload = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned))
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params.get("signature", ""))):
            raise BinanceApiError(-1022, "Signature for this request is not valid.")
        self._check_time({k: str(v) for k, v in unsigned.items()})

    # -- public endpoints --------------------------------------------------------------------------

    async def _ping(self, request: web.Request) -> dict[str, Any]:
        return {}

    async def _time(self, request: web.Request) -> dict[str, Any]:
        return {"serverTime": _now_ms()}

    async def _exchange_info(self, request: web.Request) -> dict[str, Any]:
        wanted = self._symbols_param(request.query)
        markets = [m.info() for m in self.markets.values() if wanted is None or m.id in wanted]
        if wanted is not None and not markets:
            raise BinanceApiError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": markets,
        }

    @staticmethod
    def _symbols_param(query: Any) -> set[str] | None:
        if "symbol" in query:
            return {str(query["symbol"])}
        if "symbols" in query:
            return {str(s) for s in json.loads(str(query["symbols"]))}
        return None

    def _market(self, market_id: str | None) -> StubMarket:
        if not market_id:
            raise BinanceApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        market = self.markets.get(market_id)
        if market is None:
            raise BinanceApiError(-1121, "Invalid symbol.")
        return market

    async def _klines(self, request: web.Request) -> list[list[Any]]:
        market = self._market(request.query.get("symbol"))
        interval = request.query.get("interval", "")
        if interval not in INTERVALS_MS:
            raise BinanceApiError(-1120, "Invalid interval.")
        limit = min(int(request.query.get("limit", "500")), 1000)
        start = int(request.query["startTime"]) if "startTime" in request.query else None
        end = int(request.query["endTime"]) if "endTime" in request.query else None
        stored = self.klines.get((market.id, interval), {})
        stamps = sorted(t for t in stored if (start is None or t >= start) and (end is None or t <= end))
        stamps = stamps[:limit] if start is not None else stamps[-limit:]
        return [self._kline_row(stored[t][0], interval) for t in stamps]

    @staticmethod
    def _kline_row(bar: Bar, interval: str) -> list[Any]:
        open_ms = int(bar.ts.timestamp() * 1000)
        return [
            open_ms, _fmt(bar.open), _fmt(bar.high), _fmt(bar.low), _fmt(bar.close), _fmt(bar.volume),
            open_ms + INTERVALS_MS[interval] - 1, _fmt(bar.volume * bar.close), 10,
            _fmt(bar.volume / 2), _fmt(bar.volume * bar.close / 2), "0",
        ]  # fmt: skip

    async def _ticker_24hr(self, request: web.Request) -> dict[str, Any] | list[dict[str, Any]]:
        wanted = self._symbols_param(request.query)
        if wanted is not None:
            for market_id in wanted:
                self._market(market_id)
        tickers = [self._ticker(m) for m in self.markets.values() if wanted is None or m.id in wanted]
        return tickers[0] if "symbol" in request.query else tickers

    def _ticker(self, market: StubMarket) -> dict[str, Any]:
        last = self.last_price.get(market.id, Decimal(0))
        now = _now_ms()
        return {
            "symbol": market.id, "priceChange": "0.00000000", "priceChangePercent": "0.000",
            "weightedAvgPrice": _fmt(last), "prevClosePrice": _fmt(last), "lastPrice": _fmt(last),
            "lastQty": "0.00000000", "bidPrice": _fmt(last), "bidQty": "1.00000000", "askPrice": _fmt(last),
            "askQty": "1.00000000", "openPrice": _fmt(last), "highPrice": _fmt(last), "lowPrice": _fmt(last),
            "volume": "0.00000000", "quoteVolume": "0.00000000", "openTime": now - 86_400_000, "closeTime": now,
            "firstId": 0, "lastId": 0, "count": 0,
        }  # fmt: skip

    async def _ticker_price(self, request: web.Request) -> dict[str, Any] | list[dict[str, Any]]:
        wanted = self._symbols_param(request.query)
        prices = [
            {"symbol": m.id, "price": _fmt(self.last_price.get(m.id, Decimal(0)))}
            for m in self.markets.values()
            if wanted is None or m.id in wanted
        ]
        if wanted is not None and not prices:
            raise BinanceApiError(-1121, "Invalid symbol.")
        return prices[0] if "symbol" in request.query else prices

    async def _user_data_stream(self, request: web.Request) -> web.Response:
        self._check_key(request.headers.get("X-MBX-APIKEY"))
        if request.method == "POST":
            key = uuid.uuid4().hex + uuid.uuid4().hex
            self.listen_keys.add(key)
            return _json({"listenKey": key})
        return _json({})

    # -- signed endpoints --------------------------------------------------------------------------

    @staticmethod
    def _decimal(params: dict[str, str], name: str, required: bool = True) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                raise BinanceApiError(
                    -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                )
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            raise BinanceApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '{DECIMAL_RANGE}'.",
            )
        return value

    async def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        self.order_requests.append(dict(params))
        market = self._market(params.get("symbol"))
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise BinanceApiError(-1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        kind = params.get("type", "")
        if kind not in ALL_ORDER_TYPES:
            raise BinanceApiError(-1116, "Invalid orderType.")
        if kind not in market.order_types:
            raise BinanceApiError(-2010, "Order type not supported for this symbol.")
        client_id = params.get("newClientOrderId") or f"stub{uuid.uuid4().hex[:18]}"
        if not CLIENT_ORDER_ID.match(client_id):
            raise BinanceApiError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                f"legal range is '{CLIENT_ORDER_ID.pattern}'.",
            )
        needs_tif = kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        tif = params.get("timeInForce")
        if needs_tif and tif is None:
            raise BinanceApiError(
                -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."
            )
        if not needs_tif and tif is not None:
            raise BinanceApiError(-1106, "Parameter 'timeInForce' sent when not required.")
        if tif is not None and tif not in ("GTC", "IOC", "FOK"):
            raise BinanceApiError(-1115, "Invalid timeInForce.")
        quantity = self._decimal(params, "quantity")
        assert quantity is not None
        price = self._decimal(params, "price", required=kind in ("LIMIT", "STOP_LOSS_LIMIT", "LIMIT_MAKER"))
        stop = self._decimal(params, "stopPrice", required=kind in ("STOP_LOSS", "STOP_LOSS_LIMIT"))
        self._check_filters(market, quantity, price, stop, kind)
        if any(o.open and o.client_order_id == client_id for o in self.orders.values()):
            raise BinanceApiError(-2010, "Duplicate order sent.")
        last = self.last_price.get(market.id)
        if kind == "MARKET" and last is None:
            raise BinanceApiError(-2010, "Order book is empty.")
        if stop is not None and last is not None and self._triggers(side, stop, last, last):
            raise BinanceApiError(-2010, "Stop price would trigger immediately.")
        now = _now_ms()
        order = StubOrder(
            order_id=self._next_order_id,
            symbol=market.id,
            client_order_id=client_id,
            side=side,
            type=kind,
            time_in_force=tif or "GTC",
            quantity=quantity,
            price=price or Decimal(0),
            stop_price=stop or Decimal(0),
            created_ms=now,
            updated_ms=now,
        )
        self._reserve(order, check=True)
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self.orders_created += 1
        await self._report(order, "NEW")
        fills_before = len(self.trades)
        if last is not None:
            await self._on_arrival(order, last)
        if self._order_delay is not None:
            delay, self._order_delay = self._order_delay, None
            await asyncio.sleep(delay)
        response = order.rest()
        response["transactTime"] = now
        if params.get("newOrderRespType", "FULL") == "FULL":
            response["fills"] = [
                {"price": _fmt(t.price), "qty": _fmt(t.qty), "commission": _fmt(t.commission),
                 "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
                for t in self.trades[fills_before:]
            ]  # fmt: skip
        return response

    def _check_filters(
        self, market: StubMarket, quantity: Decimal, price: Decimal | None, stop: Decimal | None, kind: str
    ) -> None:
        if quantity < market.min_qty or quantity > market.max_qty or (quantity - market.min_qty) % market.step_size:
            raise BinanceApiError(-1013, "Filter failure: LOT_SIZE")
        for value in (price, stop):
            if value is None:
                continue
            if value < market.min_price or value > market.max_price or (value - market.min_price) % market.tick_size:
                raise BinanceApiError(-1013, "Filter failure: PRICE_FILTER")
        reference = price or stop or self.last_price.get(market.id)
        if reference is not None and quantity * reference < market.min_notional:
            raise BinanceApiError(-1013, "Filter failure: NOTIONAL")

    def _find(self, params: dict[str, str], open_only: bool = False) -> StubOrder:
        market = self._market(params.get("symbol"))
        order: StubOrder | None = None
        if params.get("orderId"):
            order = self.orders.get(int(params["orderId"]))
            if order is not None and order.symbol != market.id:
                order = None
        elif params.get("origClientOrderId"):
            order = self._find_client(params["origClientOrderId"], symbol=market.id)
        else:
            raise BinanceApiError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        if order is None or (open_only and not order.open):
            if open_only:
                raise BinanceApiError(-2011, "Unknown order sent.")
            raise BinanceApiError(-2013, "Order does not exist.")
        return order

    def _find_client(
        self, client_order_id: str, symbol: str | None = None, open_only: bool = False
    ) -> StubOrder | None:
        """The most recent order with this client order id (Binance lets a closed order's id be reused)."""
        matches = [
            o
            for o in self.orders.values()
            if o.client_order_id == client_order_id
            and (symbol is None or o.symbol == symbol)
            and (o.open or not open_only)
        ]
        return max(matches, key=lambda o: o.order_id) if matches else None

    async def _query_order(self, params: dict[str, str]) -> dict[str, Any]:
        return self._find(params).rest()

    async def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params, open_only=True)
        cancel_id = params.get("newClientOrderId") or f"cancel{uuid.uuid4().hex[:16]}"
        self._release(order)
        order.status = "CANCELED"
        order.updated_ms = _now_ms()
        await self._report(order, "CANCELED", cancel_client_id=cancel_id)
        # Binance's cancel answer: the order's fields, `clientOrderId` the cancel request's own id
        shown = order.rest()
        response = {key: shown[key] for key in CANCEL_FIELDS}
        response.update(origClientOrderId=order.client_order_id, clientOrderId=cancel_id, transactTime=order.updated_ms)
        if order.is_stop:
            response["stopPrice"] = shown["stopPrice"]
        return response

    async def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market_id = self._market(params["symbol"]).id if params.get("symbol") else None
        return [o.rest() for o in self._sorted() if o.open and (market_id is None or o.symbol == market_id)]

    def _sorted(self) -> list[StubOrder]:
        return sorted(self.orders.values(), key=lambda o: o.order_id)

    async def _all_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market = self._market(params.get("symbol"))
        limit = min(int(params.get("limit", "500")), 1000)
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        from_id = int(params["orderId"]) if params.get("orderId") else None
        orders = [
            o
            for o in self._sorted()
            if o.symbol == market.id
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
            and (from_id is None or o.order_id >= from_id)
        ]
        orders = orders[:limit] if (start is not None or from_id is not None) else orders[-limit:]
        return [o.rest() for o in orders]

    async def _my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market = self._market(params.get("symbol"))
        order_id = int(params["orderId"]) if params.get("orderId") else None
        limit = min(int(params.get("limit", "500")), 1000)
        trades = [
            t for t in self.trades if t.order.symbol == market.id and (order_id is None or t.order.order_id == order_id)
        ]
        return [t.rest() for t in trades[-limit:]]

    async def _account(self, params: dict[str, str]) -> dict[str, Any]:
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [
            {"asset": asset, "free": _fmt(b.free), "locked": _fmt(b.locked)}
            for asset, b in sorted(self.balances.items())
            if not omit_zero or b.free or b.locked
        ]
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": _now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 354937868,
        }  # fmt: skip

    # -- the simulated market ----------------------------------------------------------------------

    @staticmethod
    def _triggers(side: str, stop: Decimal, high: Decimal, low: Decimal) -> bool:
        """A stop-loss buys when the price rises to the stop and sells when it falls to it."""
        return high >= stop if side == "BUY" else low <= stop

    def _reference(self, order: StubOrder) -> Decimal:
        return order.price or order.stop_price or self.last_price.get(order.symbol, Decimal(0))

    def _reserve(self, order: StubOrder, check: bool = False) -> None:
        """Lock what the order's remainder could need: quote (with the commission) for a buy, base for a sell."""
        market = self.markets[order.symbol]
        if order.side == "BUY":
            asset, need = market.quote, order.remaining * self._reference(order) * (1 + self.fee_rate)
        else:
            asset, need = market.base, order.remaining
        balance = self.balances.setdefault(asset, Balance())
        if check and balance.free < need:
            raise BinanceApiError(-2010, "Account has insufficient balance for requested action.")
        need = min(need, max(balance.free, Decimal(0)))
        balance.free -= need
        balance.locked += need
        order.locked = need

    def _release(self, order: StubOrder) -> None:
        market = self.markets[order.symbol]
        balance = self.balances.setdefault(market.quote if order.side == "BUY" else market.base, Balance())
        balance.locked -= order.locked
        balance.free += order.locked
        order.locked = Decimal(0)

    async def _on_arrival(self, order: StubOrder, last: Decimal) -> None:
        """What a new order does at once: a market order fills at the last price, a marketable limit
        at the last price; an IOC/FOK limit that cannot fill expires; the rest rests."""
        if order.type == "MARKET":
            await self._execute(order, order.remaining, last)
            return
        if order.type in ("LIMIT", "LIMIT_MAKER"):
            marketable = last <= order.price if order.side == "BUY" else last >= order.price
            if marketable:
                await self._execute(order, order.remaining, last)
            elif order.time_in_force in ("IOC", "FOK"):
                self._release(order)
                order.status = "EXPIRED"
                await self._report(order, "EXPIRED")

    async def _publish(self, market_id: str, bar: Bar, closed: bool) -> None:
        self._market(market_id)
        self._store_bar(market_id, bar, closed)
        await self._push_kline(market_id, bar, closed)
        for order in [o for o in self._sorted() if o.open and o.symbol == market_id]:
            await self._match(order, bar)

    def _store_bar(self, market_id: str, bar: Bar, closed: bool) -> None:
        if bar.timeframe not in INTERVALS_MS:
            raise ValueError(f"Binance has no {bar.timeframe} klines")
        open_ms = int(bar.ts.timestamp() * 1000)
        self.klines.setdefault((market_id, bar.timeframe), {})[open_ms] = (bar, closed)
        self.last_price[market_id] = bar.close

    async def _match(self, order: StubOrder, bar: Bar) -> None:
        buy = order.side == "BUY"
        start = bar.open
        if order.is_stop and not order.triggered:
            if not self._triggers(order.side, order.stop_price, bar.high, bar.low):
                return
            order.triggered = True
            order.updated_ms = _now_ms()
            # the order exists from the trigger on: never at an earlier, better open
            start = max(bar.open, order.stop_price) if buy else min(bar.open, order.stop_price)
            if order.type == "STOP_LOSS":
                await self._execute(order, order.remaining, start)
                return
        if order.type in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT"):
            reachable = bar.low <= order.price if buy else bar.high >= order.price
            if reachable:
                price = min(start, order.price) if buy else max(start, order.price)
                await self._execute(order, order.remaining, price)

    async def _execute(self, order: StubOrder, qty: Decimal, price: Decimal, report: bool = True) -> None:
        """One trade of `qty` at `price`: balances moved, the order's running totals, an executionReport."""
        if qty <= 0:
            return
        market = self.markets[order.symbol]
        self._release(order)
        cost = qty * price
        commission = (cost * self.fee_rate).quantize(EIGHT)
        base = self.balances.setdefault(market.base, Balance())
        quote = self.balances.setdefault(market.quote, Balance())
        if order.side == "BUY":
            quote.free -= cost + commission
            base.free += qty
        else:
            base.free -= qty
            quote.free += cost - commission
        order.executed += qty
        order.quote_executed += cost
        order.commission += commission
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        order.updated_ms = _now_ms()
        trade = StubTrade(self._next_trade_id, order, price, qty, commission, market.quote, order.updated_ms)
        self._next_trade_id += 1
        self.trades.append(trade)
        if order.open:
            self._reserve(order)
        if report:
            await self._report(order, "TRADE", trade=trade)

    # -- streams -----------------------------------------------------------------------------------

    def _execution_report(
        self, order: StubOrder, execution: str, trade: StubTrade | None, cancel_client_id: str | None
    ) -> dict[str, Any]:
        return {
            "e": "executionReport",
            "E": _now_ms(),
            "s": order.symbol,
            "c": cancel_client_id or order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": _fmt(order.quantity),
            "p": _fmt(order.price),
            "P": _fmt(order.stop_price),
            "F": "0.00000000",
            "g": -1,
            "C": order.client_order_id if cancel_client_id else "",
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": _fmt(trade.qty if trade else Decimal(0)),
            "z": _fmt(order.executed),
            "L": _fmt(trade.price if trade else Decimal(0)),
            "n": _fmt(trade.commission if trade else Decimal(0)),
            "N": trade.commission_asset if trade else None,
            "T": order.updated_ms,
            "t": trade.trade_id if trade else -1,
            "I": order.order_id * 2,
            "w": order.open and (not order.is_stop or order.triggered),
            "m": False,
            "M": False,
            "O": order.created_ms,
            "Z": _fmt(order.quote_executed),
            "Y": _fmt(trade.qty * trade.price if trade else Decimal(0)),
            "Q": "0.00000000",
            "W": order.created_ms,
            "V": "EXPIRE_MAKER",
        }

    async def _report(
        self, order: StubOrder, execution: str, *, trade: StubTrade | None = None, cancel_client_id: str | None = None
    ) -> None:
        event = self._execution_report(order, execution, trade, cancel_client_id)
        for socket in list(self._sockets):
            if socket.kind != "user":
                continue
            if socket.subscription_id is not None:
                await self._send(socket, {"subscriptionId": socket.subscription_id, "event": event})
            elif socket.listen_key:
                await self._send(socket, event)

    async def _push_kline(self, market_id: str, bar: Bar, closed: bool) -> None:
        stream = f"{market_id.lower()}@kline_{bar.timeframe}"
        open_ms = int(bar.ts.timestamp() * 1000)
        event = {
            "e": "kline",
            "E": _now_ms(),
            "s": market_id,
            "k": {
                "t": open_ms, "T": open_ms + INTERVALS_MS[bar.timeframe] - 1, "s": market_id, "i": bar.timeframe,
                "f": 100, "L": 200, "o": _fmt(bar.open), "c": _fmt(bar.close), "h": _fmt(bar.high),
                "l": _fmt(bar.low), "v": _fmt(bar.volume), "n": 100, "x": closed,
                "q": _fmt(bar.volume * bar.close), "V": "0.00000000", "Q": "0.00000000", "B": "0",
            },
        }  # fmt: skip
        for socket in list(self._sockets):
            if socket.kind == "market" and stream in socket.streams:
                await self._send(socket, {"stream": stream, "data": event} if socket.combined else event)

    async def _send(self, socket: _Socket, payload: dict[str, Any]) -> None:
        if self.silenced or socket.ws.closed:
            return
        try:
            await socket.ws.send_str(_dumps(payload))
        except ConnectionError:
            self._sockets.discard(socket)

    async def _serve_socket(
        self,
        request: web.Request,
        socket_kind: Literal["market", "user"],
        on_text: Callable[[_Socket, str], Awaitable[None]],
        **extra: Any,
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        socket = _Socket(ws=ws, kind=socket_kind, **extra)
        self._sockets.add(socket)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await on_text(socket, message.data)
        finally:
            self._sockets.discard(socket)
        return ws

    async def _market_ws(self, request: web.Request) -> web.WebSocketResponse:
        name = request.match_info.get("name")
        if name is not None and name in self.listen_keys:
            return await self._serve_socket(request, "user", self._on_market_text, listen_key=True)
        combined = request.path == "/stream"
        streams = set(request.query.get("streams", "").split("/")) - {""} if combined else set()
        return await self._serve_socket(request, "market", self._on_market_text, combined=combined, streams=streams)

    async def _on_market_text(self, socket: _Socket, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, as Binance's market streams answer them."""
        try:
            request = json.loads(text)
            method, request_id = request["method"], request.get("id")
            params = request.get("params", [])
        except (ValueError, KeyError, TypeError, AttributeError):
            await self._send(socket, {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            return
        if method == "SUBSCRIBE":
            socket.streams.update(str(p) for p in params)
            await self._send(socket, {"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE":
            socket.streams.difference_update(str(p) for p in params)
            await self._send(socket, {"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            await self._send(socket, {"result": sorted(socket.streams), "id": request_id})
        else:
            await self._send(socket, {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                                      "id": request_id})  # fmt: skip

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_socket(request, "user", self._on_ws_api_text)

    async def _on_ws_api_text(self, socket: _Socket, text: str) -> None:
        """The WebSocket API's requests ccxt uses: the user-data subscription (signed), ping, time."""
        try:
            request = json.loads(text)
            method, request_id = str(request["method"]), request.get("id")
            params = request.get("params", {}) or {}
        except (ValueError, KeyError, TypeError):
            await self._send(socket, {"id": None, "status": 400, "error": {"code": -1102, "msg": "Malformed request."}})
            return
        try:
            result: dict[str, Any]
            if method == "userDataStream.subscribe.signature":
                self._verify_ws(params)
                socket.subscription_id = self._next_subscription
                self._next_subscription += 1
                result = {"subscriptionId": socket.subscription_id}
            elif method == "userDataStream.unsubscribe":
                socket.subscription_id = None
                result = {}
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": _now_ms()}
            else:
                raise BinanceApiError(-1100, f"Unknown method '{method}'.")
        except BinanceApiError as error:
            await self._send(socket, {"id": request_id, "status": error.status,
                                      "error": {"code": error.code, "msg": error.msg}})  # fmt: skip
            return
        await self._send(socket, {"id": request_id, "status": 200, "result": result, "rateLimits": []})
