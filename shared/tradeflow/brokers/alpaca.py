"""The Alpaca adapter: our broker port (and pull-mode market data) on top of alpaca-py.

Importing this module imports alpaca-py (and, through it, pandas), which is why only the broker factory
imports it, lazily, for an account whose broker is `alpaca` (design rule 9).

What it adds to the SDK:
- **No blind retries, bounded waits.** alpaca-py sends requests without a timeout and re-sends a 429 or
  504 answer by itself, order POSTs included. Both are turned off: every request carries a connect
  and a read timeout (`Timeouts`), nothing is retried here, and `resilience.GuardedBroker` decides what
  may be retried (reads) and what must be looked up instead (an order POST that timed out).
- **Errors in our terms** (`port.py`), always keeping Alpaca's own message: whenever an order POST may
  have reached Alpaca without us learning the outcome (a read timeout, a connection broken after
  sending, a 502/504 from its gateway, an unreadable 2xx) it is `BrokerTimeout` (look the order up by
  client order id); failing to connect at all (refused, or a connect timeout: nothing was sent), another
  5xx, or any failed read is `BrokerUnavailable`; a 429 is `RateLimited` with the delay Alpaca asked
  for; refused credentials are `BrokerAuthFailed`; an order Alpaca refuses is `BrokerRejected` with a
  code (insufficient funds, unknown symbol, invalid quantity, market closed, price increment, anything
  else); a reused client order id is `DuplicateClientOrderId`.
- **Orders as the port describes them** (`broker_order`, shared with the trade-updates stream).
  Alpaca reports executions only as running totals (`filled_qty`, `filled_avg_price`), so an order
  carries at most one `BrokerFill`, whose ref is `<alpaca order id>@<filled qty>`; the books record
  only the part beyond what they already hold, so a REST snapshot and a stream event of the same
  executions are never counted twice.

Status mapping (Alpaca -> ours), chosen so that an order only ever moves forward in our state machine:
- working states — `pending_new`, `accepted`, `new`, `accepted_for_bidding`, `held`, `pending_review`,
  `stopped`, `suspended`, `pending_replace`, `pending_cancel` (a fill can still arrive),
  `done_for_day` (the order comes back next session or expires), `calculated` — are `accepted`, or
  `partially_filled` as soon as anything has filled (the same as the paper broker's acknowledged order);
- `partially_filled` -> `partially_filled`; `filled` -> `filled`;
- `canceled` -> `cancelled`; `replaced` -> `cancelled` (we never replace orders: the replacement is a
  different order of someone else's making, and this one will not trade again); `expired` ->
  `expired`; `rejected` -> `rejected`.

Other choices, documented here because they differ from the SDK's vocabulary:
- Alpaca takes crypto orders only as `gtc` or `ioc`; a `day` order for a crypto symbol (a symbol with
  "/") is sent as `gtc` — crypto trades around the clock, so reconciliation expires it at day end.
- Alpaca's own time-in-force values map back as `opg`/`cls` -> `day` and `fok` -> `ioc`; a
  `trailing_stop` order (placed outside tradeflow) is reported as a `stop` order.
- Crypto positions come back as `BTCUSD`; they are reported as `BTC/USD`, the symbol orders use.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.enums import OrderType as AlpacaType
from alpaca.trading.enums import PositionSide, QueryOrderStatus
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import Position as AlpacaPosition
from alpaca.trading.models import TradeAccount
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from tradeflow.accounts.credentials import AlpacaCredentials
from tradeflow.brokers.endpoints import endpoint_override
from tradeflow.brokers.port import (
    BrokerAccount,
    BrokerAuthFailed,
    BrokerError,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    DuplicateClientOrderId,
    RateLimited,
    RejectCode,
)
from tradeflow.domain import Account, Bar, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.domain.types import tidy

log = logging.getLogger("tradeflow.brokers.alpaca")
T = TypeVar("T")

TIMEOUTS_ENV = "TRADEFLOW_ALPACA_TIMEOUTS"  # "connect,read" in seconds, e.g. "3,10"
ORDERS_PAGE = 500  # Alpaca's maximum page size for GET /v2/orders
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")  # quote currencies of Alpaca's crypto pairs, longest first


@dataclass(frozen=True)
class Timeouts:
    """How long any request may take to connect and to answer (seconds)."""

    connect: float = 3.0
    read: float = 10.0

    @classmethod
    def from_env(cls) -> Timeouts:
        """The operator's setting (`TRADEFLOW_ALPACA_TIMEOUTS="3,10"`), else the defaults."""
        raw = os.environ.get(TIMEOUTS_ENV, "").strip()
        if not raw:
            return cls()
        try:
            connect, read = (float(part) for part in raw.split(","))
        except ValueError:
            raise ValueError(f"{TIMEOUTS_ENV} must be 'connect,read' in seconds, got {raw!r}") from None
        return cls(connect, read)


def is_crypto(symbol: str) -> bool:
    """Alpaca's crypto pairs are written with a slash (BTC/USD); stocks never are."""
    return "/" in symbol


# -- orders: Alpaca's model -> ours (shared with the trade-updates stream) ---------------------------

_WORKING = {
    AlpacaStatus.PENDING_NEW,
    AlpacaStatus.ACCEPTED,
    AlpacaStatus.NEW,
    AlpacaStatus.ACCEPTED_FOR_BIDDING,
    AlpacaStatus.HELD,
    AlpacaStatus.PENDING_REVIEW,
    AlpacaStatus.STOPPED,
    AlpacaStatus.SUSPENDED,
    AlpacaStatus.PENDING_REPLACE,
    AlpacaStatus.PENDING_CANCEL,
    AlpacaStatus.DONE_FOR_DAY,
    AlpacaStatus.CALCULATED,
    AlpacaStatus.PARTIALLY_FILLED,
}
_FINAL = {
    AlpacaStatus.FILLED: OrderStatus.FILLED,
    AlpacaStatus.CANCELED: OrderStatus.CANCELLED,
    AlpacaStatus.REPLACED: OrderStatus.CANCELLED,
    AlpacaStatus.EXPIRED: OrderStatus.EXPIRED,
    AlpacaStatus.REJECTED: OrderStatus.REJECTED,
}
_TYPES_IN = {
    AlpacaType.MARKET: OrderType.MARKET,
    AlpacaType.LIMIT: OrderType.LIMIT,
    AlpacaType.STOP: OrderType.STOP,
    AlpacaType.STOP_LIMIT: OrderType.STOP_LIMIT,
    AlpacaType.TRAILING_STOP: OrderType.STOP,
}
_TIF_IN = {
    AlpacaTif.DAY: TimeInForce.DAY,
    AlpacaTif.GTC: TimeInForce.GTC,
    AlpacaTif.IOC: TimeInForce.IOC,
    AlpacaTif.FOK: TimeInForce.IOC,
    AlpacaTif.OPG: TimeInForce.DAY,
    AlpacaTif.CLS: TimeInForce.DAY,
}
_TIF_OUT = {TimeInForce.DAY: AlpacaTif.DAY, TimeInForce.GTC: AlpacaTif.GTC, TimeInForce.IOC: AlpacaTif.IOC}


def decimal(value: object) -> Decimal:
    """An SDK number (a string, or a float the SDK parsed) as an exact Decimal; floats go through their
    shortest repr so no binary noise enters the ledger."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _optional_decimal(value: object) -> Decimal | None:
    return None if value is None or value == "" else decimal(value)


def canonical(quantity: Decimal) -> str:
    """`10`, never `10.000` or `1E+1`: fill refs built from a quantity must not depend on its spelling."""
    return format(quantity.normalize(), "f") if quantity else "0"


def order_status(alpaca: AlpacaOrder) -> OrderStatus:
    status = AlpacaStatus(alpaca.status)
    if status in _FINAL:
        return _FINAL[status]
    if status not in _WORKING:  # a status newer than this mapping: treat it as still working
        log.warning("unknown Alpaca order status %r for %s; treated as working", alpaca.status, alpaca.id)
    filled = _optional_decimal(alpaca.filled_qty) or Decimal(0)
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED


def broker_order(alpaca: AlpacaOrder) -> BrokerOrder:
    """Alpaca's order (REST answer or trade-update payload) as the port's `BrokerOrder`."""
    if alpaca.symbol is None or alpaca.side is None:
        raise ValueError(f"order {alpaca.id} is a multi-leg order; tradeflow only places simple orders")
    status = order_status(alpaca)
    filled = _optional_decimal(alpaca.filled_qty) or Decimal(0)
    average = _optional_decimal(alpaca.filled_avg_price)
    quantity = _optional_decimal(alpaca.qty)
    fills = []
    if filled > 0 and average is not None:
        # Alpaca's filled_at is the time the order completed; a partial fill is best dated by the update.
        at = alpaca.filled_at if status is OrderStatus.FILLED and alpaca.filled_at else alpaca.updated_at
        fills.append(
            BrokerFill(
                ref=f"{alpaca.id}@{canonical(filled)}",
                quantity=filled,
                price=average,
                ts=at,
                cumulative_quantity=filled,
                cumulative_average=average,
            )
        )
    kind = alpaca.type or alpaca.order_type
    return BrokerOrder(
        client_order_id=alpaca.client_order_id,
        broker_order_id=str(alpaca.id),
        symbol=alpaca.symbol,
        side=OrderSide(AlpacaSide(alpaca.side).value),
        quantity=quantity if quantity is not None else filled,  # notional orders carry no qty
        order_type=_TYPES_IN[AlpacaType(kind)] if kind is not None else OrderType.MARKET,
        time_in_force=_TIF_IN[AlpacaTif(alpaca.time_in_force)],
        limit_price=_optional_decimal(alpaca.limit_price),
        stop_price=_optional_decimal(alpaca.stop_price),
        status=status,
        filled_quantity=filled,
        fills=fills,
        reject_reason="rejected by Alpaca" if status is OrderStatus.REJECTED else None,
        submitted_at=alpaca.submitted_at or alpaca.created_at,
        updated_at=alpaca.updated_at,
    )


def our_symbol(symbol: str, crypto: bool) -> str:
    """Alpaca reports crypto positions as `BTCUSD`; orders and bars use `BTC/USD`."""
    if not crypto or "/" in symbol:
        return symbol
    for quote in CRYPTO_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}/{quote}"
    return symbol


def _position(alpaca: AlpacaPosition) -> BrokerPosition:
    quantity = abs(decimal(alpaca.qty))
    if alpaca.side == PositionSide.SHORT:
        quantity = -quantity
    crypto = str(getattr(alpaca.asset_class, "value", alpaca.asset_class)) == "crypto"
    return BrokerPosition(
        symbol=our_symbol(alpaca.symbol, crypto), quantity=quantity, average_price=decimal(alpaca.avg_entry_price)
    )


# -- errors: Alpaca's answers -> ours -----------------------------------------------------------------

_AUTH_WORDS = ("unauthorized", "not authorized", "forbidden", "api key", "access key", "credentials")
_UNKNOWN_SYMBOL_WORDS = ("could not find", "not tradable", "not found", "is not active", "unknown symbol")
_QUANTITY_WORDS = ("qty", "quantity", "fractional", "notional")
_CLOSED_WORDS = ("market hours", "market is closed", "market closed", "outside of market", "extended hours")
_PRICE_WORDS = ("sub-penny", "increment", "minimum pricing")
_FUNDS_WORDS = ("buying power", "insufficient")


def _body(error: APIError) -> tuple[str, dict[str, Any]]:
    """(Alpaca's message, the parsed body) of an error answer; a non-JSON body is its own message."""
    text = str(error)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "no message", {}
    if not isinstance(parsed, dict):
        return text.strip()[:500], {}
    return str(parsed.get("message") or text)[:500], parsed


def _retry_after(response: requests.Response | None) -> float | None:
    """Seconds Alpaca asked us to wait: `Retry-After` (seconds or an HTTP date), else the rate-limit
    window's reset time (`X-Ratelimit-Reset`, epoch seconds)."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                return max((email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return max(float(reset) - time.time(), 0.0)
        except ValueError:
            return None
    return None


def _has(message: str, words: tuple[str, ...]) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in words)


def map_api_error(error: APIError, what: str, *, order_post: bool = False, symbol: str | None = None) -> BrokerError:
    """An error answer of Alpaca's as one of the port's errors (Alpaca's message kept as broker_message).

    `order_post`: the answer is to an order submission, where a 4xx is the broker refusing the order
    (classified by Alpaca's message) and a 504 means the order may exist all the same."""
    status = error.status_code or 0
    message, _ = _body(error)
    said = f"Alpaca answered {status} to {what}: {message}"
    if status == 429:
        return RateLimited(said, message, retry_after=_retry_after(error.response))
    if status == 401 or (status == 403 and (not order_post or _has(message, _AUTH_WORDS))):
        return BrokerAuthFailed(said, message)
    if status >= 500 or status == 0:
        if order_post and status in (502, 504):
            return BrokerTimeout(f"{said} (the order may have been created)", message)
        return BrokerUnavailable(said, message)
    if not order_post:
        return BrokerRejected(RejectCode.REJECTED, said, message)
    if "client_order_id must be unique" in message.lower():
        return DuplicateClientOrderId(said, message)
    if _has(message, _FUNDS_WORDS):
        return BrokerRejected(RejectCode.INSUFFICIENT_FUNDS, said, message)
    if _has(message, _UNKNOWN_SYMBOL_WORDS) or status == 404:
        return BrokerRejected(
            RejectCode.UNKNOWN_SYMBOL, f"{symbol} is not a tradable asset at Alpaca: {message}", message
        )
    if _has(message, _CLOSED_WORDS):
        return BrokerRejected(RejectCode.MARKET_CLOSED, said, message)
    if _has(message, _QUANTITY_WORDS):
        return BrokerRejected(RejectCode.INVALID_QUANTITY, said, message)
    if _has(message, _PRICE_WORDS):
        return BrokerRejected(RejectCode.PRECISION, said, message)
    return BrokerRejected(RejectCode.REJECTED, said, message)


def _never_sent(error: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (refused, unresolvable, connect
    timeout); False when it broke after sending, when the broker may have acted on it."""
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a ConnectTimeoutError


class _NotFound(Exception):
    pass


class _TimedSession(requests.Session):
    """A requests session whose every request carries our timeouts (alpaca-py passes none)."""

    def __init__(self, timeouts: Timeouts) -> None:
        super().__init__()
        self.timeout = (timeouts.connect, timeouts.read)

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def harden(client: Any, timeouts: Timeouts) -> Any:
    """Give an alpaca-py REST client our timeouts and take away its own retries: it would re-send a
    429 or 504 answer after sleeping, order POSTs included (`alpaca/common/rest.py`)."""
    client._session = _TimedSession(timeouts)
    client._retry = 0
    client._retry_codes = []
    return client


# -- the adapter ---------------------------------------------------------------------------------------


class AlpacaBroker:
    """One Alpaca account (paper or live) behind the `Broker` and `MarketData` ports."""

    name = "alpaca"

    def __init__(
        self,
        api_key_id: str,
        secret_key: str,
        *,
        paper: bool = True,
        base_url: str | None = None,
        timeouts: Timeouts | None = None,
        feed: str = "iex",
    ) -> None:
        self.paper = paper
        self.base_url = base_url
        self.timeouts = timeouts or Timeouts()
        self.feed = feed
        self._key = api_key_id
        self._secret = secret_key
        self._trading = harden(TradingClient(api_key_id, secret_key, paper=paper, url_override=base_url), self.timeouts)
        self._stock_data: Any = None
        self._crypto_data: Any = None

    @classmethod
    def connect(
        cls, account: Account, credentials: AlpacaCredentials, timeouts: Timeouts | None = None
    ) -> AlpacaBroker:
        """The adapter of a broker account. Live only when both the account and its credentials say
        live: a disagreement goes to the paper endpoint, where live keys are refused loudly."""
        paper = credentials.paper or account.broker_config.get("paper", True) is not False
        return cls(
            credentials.api_key_id,
            credentials.secret_key.get_secret_value(),
            paper=paper,
            base_url=endpoint_override("alpaca"),
            timeouts=timeouts or Timeouts.from_env(),
        )

    # -- calling the SDK ---------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        call: Callable[[], T],
        *,
        order_post: bool = False,
        symbol: str | None = None,
        missing_ok: bool = False,
    ) -> T:
        """One SDK call, its failures mapped to the port's errors; nothing is retried here. With
        `missing_ok` a 404 raises `_NotFound` for the caller to answer "no such order"."""
        try:
            return call()
        except APIError as error:
            if error.status_code == 404 and missing_ok:
                raise _NotFound(str(error)) from None
            mapped = map_api_error(error, what, order_post=order_post, symbol=symbol)
            log.warning("%s", mapped)
            raise mapped from None
        except requests.ConnectTimeout:
            raise BrokerUnavailable(f"Alpaca: could not connect within {self.timeouts.connect}s for {what}") from None
        except requests.Timeout:
            raise BrokerTimeout(f"Alpaca: no answer within {self.timeouts.read}s to {what}") from None
        except requests.ConnectionError as error:
            if order_post and not _never_sent(error):
                raise BrokerTimeout(f"Alpaca: connection lost after sending {what}: {error}") from None
            raise BrokerUnavailable(f"Alpaca: cannot reach the API for {what}: {error}") from None
        except requests.RequestException as error:
            raise BrokerUnavailable(f"Alpaca: request failed for {what}: {error}") from None
        except ValueError as error:  # a 2xx answer that is not the JSON the SDK expects
            if order_post:
                raise BrokerTimeout(f"Alpaca: unreadable answer to {what}: {error}") from None
            raise BrokerUnavailable(f"Alpaca: unreadable answer to {what}: {error}") from None

    def _order(self, what: str, call: Callable[[], object]) -> AlpacaOrder | None:
        try:
            found = self._call(what, call, missing_ok=True)
        except _NotFound:
            return None
        return _model(AlpacaOrder, found)

    # -- the broker port ---------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        request = _order_request(order)
        placed = self._call(
            f"order {order.client_order_id}",
            lambda: self._trading.submit_order(request),
            order_post=True,
            symbol=order.symbol,
        )
        return broker_order(_model(AlpacaOrder, placed))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        found = self._order(
            f"lookup of {client_order_id}", lambda: self._trading.get_order_by_client_id(client_order_id)
        )
        return broker_order(found) if found is not None else None

    def cancel(self, client_order_id: str) -> BrokerOrder:
        """Cancel by our id (looked up, then cancelled by Alpaca's id); returns the order's state after.
        An order already final is returned as it is; Alpaca may answer `pending_cancel` first."""
        found = self._order(
            f"lookup of {client_order_id}", lambda: self._trading.get_order_by_client_id(client_order_id)
        )
        if found is None:
            raise BrokerRejected(RejectCode.REJECTED, f"order {client_order_id} not found at Alpaca")
        current = broker_order(found)
        if current.status.final:
            return current
        order_id = found.id
        try:
            self._call(
                f"cancel of {client_order_id}", lambda: self._trading.cancel_order_by_id(order_id), missing_ok=True
            )
        except _NotFound:
            raise BrokerRejected(RejectCode.REJECTED, f"order {client_order_id} not found at Alpaca") from None
        except BrokerRejected as refused:  # 422: the order became final (filled, say) in the meantime
            log.info("Alpaca refused to cancel %s: %s", client_order_id, refused.broker_message)
        after = self._order(f"order {client_order_id}", lambda: self._trading.get_order_by_id(order_id))
        return broker_order(after) if after is not None else current

    def open_orders(self) -> list[BrokerOrder]:
        return [
            broker_order(o) for o in self._orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=ORDERS_PAGE))
        ]

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        """Orders submitted after `since` (any status; Alpaca filters by submission time, so pages
        follow the last submission time seen) plus every open order, however old."""
        found: dict[str, BrokerOrder] = {}
        cursor = since
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL, after=cursor, direction=Sort.ASC, limit=ORDERS_PAGE, nested=False
            )
            page = self._orders(request)
            fresh = [o for o in page if str(o.id) not in found]
            for alpaca in page:
                found[str(alpaca.id)] = broker_order(alpaca)
            if len(page) < ORDERS_PAGE or not fresh:
                break
            # `after` is exclusive: step back a microsecond so orders sharing the boundary's timestamp
            # are fetched again (and de-duplicated) rather than skipped.
            cursor = max(o.submitted_at or o.created_at for o in page) - timedelta(microseconds=1)
        for order in self.open_orders():
            found.setdefault(order.broker_order_id, order)
        return sorted(found.values(), key=lambda o: (o.submitted_at, o.client_order_id))

    def _orders(self, request: GetOrdersRequest) -> list[AlpacaOrder]:
        rows = self._call("order list", lambda: self._trading.get_orders(request))
        return [_model(AlpacaOrder, row) for row in _listed(rows)]

    def positions(self) -> list[BrokerPosition]:
        rows = self._call("positions", self._trading.get_all_positions)
        return sorted((_position(_model(AlpacaPosition, row)) for row in _listed(rows)), key=lambda p: p.symbol)

    def account(self) -> BrokerAccount:
        found = _model(TradeAccount, self._call("account", self._trading.get_account))
        return BrokerAccount(
            cash=_optional_decimal(found.cash) or Decimal(0),
            equity=_optional_decimal(found.equity) or Decimal(0),
            buying_power=_optional_decimal(found.buying_power) or Decimal(0),
            currency=found.currency or "USD",
        )

    # -- market data -------------------------------------------------------------------------------

    def historical_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime | None = None, limit: int | None = None
    ) -> list[Bar]:
        """Bars from Alpaca's market data API (stocks on `feed`, crypto from the US crypto feed)."""
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest

        frame = alpaca_timeframe(timeframe)
        if is_crypto(symbol):
            crypto_request = CryptoBarsRequest(
                symbol_or_symbols=symbol, timeframe=frame, start=start, end=end, limit=limit
            )
            result = self._call(
                f"{symbol} bars", lambda: self._crypto_client().get_crypto_bars(crypto_request), symbol=symbol
            )
        else:
            stock_request = StockBarsRequest(
                symbol_or_symbols=symbol, timeframe=frame, start=start, end=end, limit=limit, feed=DataFeed(self.feed)
            )
            result = self._call(
                f"{symbol} bars", lambda: self._stock_client().get_stock_bars(stock_request), symbol=symbol
            )
        bars = []
        for raw in result.data.get(symbol, []):
            try:
                bars.append(
                    Bar(
                        symbol=symbol,
                        timeframe=timeframe,
                        ts=raw.timestamp,
                        open=raw.open,
                        high=raw.high,
                        low=raw.low,
                        close=raw.close,
                        volume=raw.volume,
                    )
                )
            except ValueError as invalid:  # a bar that breaks our invariants is left out, loudly
                log.warning("Alpaca bar of %s at %s skipped: %s", symbol, raw.timestamp, invalid)
        return bars

    def _stock_client(self) -> Any:
        if self._stock_data is None:
            from alpaca.data.historical.stock import StockHistoricalDataClient

            client = StockHistoricalDataClient(self._key, self._secret, url_override=self.base_url)
            self._stock_data = harden(client, self.timeouts)
        return self._stock_data

    def _crypto_client(self) -> Any:
        if self._crypto_data is None:
            from alpaca.data.historical.crypto import CryptoHistoricalDataClient

            client = CryptoHistoricalDataClient(self._key, self._secret, url_override=self.base_url)
            self._crypto_data = harden(client, self.timeouts)
        return self._crypto_data


def _model(kind: type[T], value: object) -> T:
    if not isinstance(value, kind):
        raise BrokerUnavailable(f"Alpaca answered with {type(value).__name__} where {kind.__name__} was expected")
    return value


def _listed(value: object) -> list[object]:
    if not isinstance(value, list):
        raise BrokerUnavailable(f"Alpaca answered with {type(value).__name__} where a list was expected")
    return value


def _order_request(order: Order) -> OrderRequest:
    tif = _TIF_OUT[order.time_in_force]
    if is_crypto(order.symbol) and tif is AlpacaTif.DAY:
        tif = AlpacaTif.GTC
    fields: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": float(order.quantity),
        "side": AlpacaSide(order.side.value),
        "time_in_force": tif,
        "client_order_id": order.client_order_id,
    }
    match order.order_type:
        case OrderType.MARKET:
            return MarketOrderRequest(**fields)
        case OrderType.LIMIT:
            return LimitOrderRequest(**fields, limit_price=float(_required(order.limit_price)))
        case OrderType.STOP:
            return StopOrderRequest(**fields, stop_price=float(_required(order.stop_price)))
        case OrderType.STOP_LIMIT:
            return StopLimitOrderRequest(
                **fields,
                limit_price=float(_required(order.limit_price)),
                stop_price=float(_required(order.stop_price)),
            )
    raise ValueError(f"order type {order.order_type} has no Alpaca equivalent")  # pragma: no cover


def _required(price: Decimal | None) -> Decimal:
    if price is None:  # OrderTerms guarantees the prices of each type; this is a broken invariant
        raise ValueError("order is missing a price its type requires")
    return tidy(price)


_TIMEFRAMES: dict[str, tuple[int, str]] = {
    "1m": (1, "Min"),
    "5m": (5, "Min"),
    "15m": (15, "Min"),
    "30m": (30, "Min"),
    "1h": (1, "Hour"),
    "4h": (4, "Hour"),
    "1d": (1, "Day"),
    "1w": (1, "Week"),
    "1mo": (1, "Month"),
}


def alpaca_timeframe(timeframe: str) -> Any:
    """Our timeframe (`1m`, `1h`, `1d` ...) as alpaca-py's `TimeFrame`."""
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    try:
        amount, unit = _TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"timeframe {timeframe!r} has no Alpaca equivalent; known: {', '.join(_TIMEFRAMES)}") from None
    return TimeFrame(amount, TimeFrameUnit(unit))
