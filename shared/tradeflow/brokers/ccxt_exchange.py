"""The ccxt adapter: any crypto exchange ccxt reaches, behind our broker port (spot markets).

Built per account by `CcxtBroker.connect(account, credentials)` (the broker factory calls it; this module
and `ccxt_streams` are the only ones that import ccxt, design rule 9). Symbols are ccxt's unified
spot symbols (`BTC/USDT`).

Connecting
- The exchange is `credentials.exchange` (`account.broker_config["exchange"]` must agree). Sandbox
  (testnet) mode is used when the credentials or `broker_config["sandbox"]` ask for it; an exchange
  without a sandbox is then refused (`NoSandbox`), never silently traded live.
- ccxt's own rate limiter is on (`enableRateLimit`), every request has a timeout
  (`broker_config["timeout_seconds"]`, default 10 s), and markets are limited to spot.
- `TRADEFLOW_BROKER_ENDPOINTS` (see `endpoints.py`) may point the exchange at a local stub: scheme and
  host of every URL in `urls["api"]` / `urls["test"]` (per API section, websockets included) are
  replaced, paths kept.

Orders (design rule 4)
- Our client order id always goes as `params={"clientOrderId": ...}`: ccxt invents one when it is
  missing, which would turn a retry into a second order.
- Types: market; limit; stop = a market order with `triggerPrice` (Binance: STOP_LOSS); stop-limit = a
  limit order with `triggerPrice` (STOP_LOSS_LIMIT). A type the exchange (or, where the market lists
  them as Binance's exchangeInfo does, the market) lacks is rejected naming the type and the exchange.
- Time in force: GTC and IOC as they are. **DAY is sent as GTC**: crypto markets have no session to end,
  so the day order's expiry is ours to enforce (reconciliation expires day orders); an order we sent
  as DAY is reported back as DAY. Market and stop orders carry no time in force.
- Precision and limits: amount and prices are rounded with ccxt's `amount_to_precision` /
  `price_to_precision` (the market's precision mode: amounts truncated to the step, prices rounded to
  the tick), then checked against the market's limits (min/max amount, min/max price, min/max
  notional; a market order's notional uses the last price). An order that cannot meet them, or whose
  amount rounds to zero, is rejected (`RejectCode.PRECISION`) naming the value and the limit, and is
  never sent. The reported quantity is the rounded one.
- Executions are running totals: a `BrokerOrder` carries at most one `BrokerFill` with the order's
  filled quantity and average price so far (`ref = <exchange order id>@<filled>`); the fee is the part
  ccxt reports in the market's quote currency (a fee in the base currency is converted at the average
  price; other currencies, e.g. BNB, are not counted), 0 when the answer carries none.

Looking an order up by our client order id
- Exchanges whose ccxt `fetch_order` accepts `clientOrderId` (`LOOKUP_BY_CLIENT_ID`: the Binance family,
  OKX, KuCoin, Bitget) are asked directly. They need the symbol: it comes from our ledger (the order
  record is written before the broker call), or failing that each of the adapter's `symbols` is tried.
- **Fallback** for the others: the order is searched for by `clientOrderId` among the open orders and
  the most recent orders (`fetch_orders`, else `fetch_closed_orders`) of its symbol.
- "Not found" (ccxt's OrderNotFound) is None.

Errors (ccxt's hierarchy -> ours; the exchange's message is kept as `broker_message`, nothing is retried
here: `resilience.GuardedBroker` retries reads, and an order POST is never blindly retried)
- AuthenticationError / PermissionDenied / AccountSuspended -> `BrokerAuthFailed`. Binance's -2015
  ("Invalid API-key, IP, or permissions") is also `BrokerAuthFailed` when ccxt reports it as
  DDoSProtection (ccxt does so once a key has worked, guessing at a temporary ban).
- InsufficientFunds -> INSUFFICIENT_FUNDS; BadSymbol -> UNKNOWN_SYMBOL naming the symbol; DuplicateOrderId
  (and Binance's "Duplicate order sent.") -> `DuplicateClientOrderId`; MarketClosed -> MARKET_CLOSED;
  InvalidOrder / BadRequest -> PRECISION for filter failures, INVALID_QUANTITY for amounts, else
  REJECTED; OperationRejected / NotSupported -> REJECTED.
- RateLimitExceeded / DDoSProtection -> `RateLimited` (with the `Retry-After` the exchange sent);
  RequestTimeout -> `BrokerTimeout`; NetworkError / ExchangeNotAvailable -> `BrokerUnavailable`.
- When submitting: OnMaintenance -> MARKET_CLOSED (a signal is about now; an order should not wait for
  the maintenance to end), and an exchange failure after the request was sent (HTTP 5xx, an
  unexpected answer) -> `BrokerTimeout`: the order may exist (Binance documents 5xx as "execution
  status unknown"), so the caller looks it up by client order id instead of giving up or resending.

Positions and the account (spot)
- `positions()`: every non-zero balance of an asset traded against the account's quote currency
  (`broker_config["quote_currency"]`, else the account's currency) is a position of `<asset>/<quote>`.
  Exchanges do not report a cost basis for balances: the average price is our ledger's for that
  symbol, 0 when the ledger has no position (an unexplained balance).
- `account()`: cash = the quote currency's total balance, buying power = its free balance, equity =
  cash + each position at its last price.
- `open_orders()`, `recent_orders(since)`: per symbol (those of the account's orders in our ledger plus
  the adapter's `symbols`), except that open orders are first asked for without a symbol where the
  exchange allows it (orders placed outside tradeflow are then seen too). Recent orders are the
  exchange's most recent `RECENT_LIMIT` orders per symbol, kept when updated since `since` or open.
- `historical_bars()`: `fetch_ohlcv`, paged by `since` until `end` / `limit`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt

from tradeflow.accounts.credentials import CcxtCredentials
from tradeflow.brokers.endpoints import endpoint_override, websocket_url
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
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository

log = logging.getLogger("tradeflow.brokers.ccxt")
T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 10.0
# ccxt's fetch_order accepts {"clientOrderId": ...} for these (checked in ccxt 4.5's sources).
LOOKUP_BY_CLIENT_ID = frozenset({"binance", "binanceus", "binanceusdm", "binancecoinm", "okx", "kucoin", "bitget"})
RECENT_LIMIT = 1000
OHLCV_PAGE = 1000
URL_SECTIONS = ("api", "test", "apiBackup", "demo")
# Binance's own names for our types, checked against a market's `orderTypes` where it lists them.
BINANCE_TYPE_NAMES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
}
STOP_FLAGS = {
    OrderType.STOP: ("createStopMarketOrder", "createStopOrder", "createTriggerOrder", "createStopLossOrder"),
    OrderType.STOP_LIMIT: ("createStopLimitOrder", "createTriggerOrder", "createStopOrder"),
}
CREDENTIALS_REFUSED = re.compile(r'"code"\s*:\s*-2015\b')  # Binance: invalid API key, IP or permissions
PRECISION_WORDS = ("LOT_SIZE", "PRICE_FILTER", "NOTIONAL", "precision", "Filter failure", "tick size", "step size")


class NoSandbox(BrokerRejected):
    """Sandbox mode was asked for, and the exchange has no sandbox: refused rather than traded live."""

    def __init__(self, exchange_id: str) -> None:
        super().__init__(
            RejectCode.REJECTED,
            f"exchange {exchange_id} has no sandbox/testnet in ccxt; set sandbox=false only to trade live",
        )


class UnknownExchange(BrokerRejected):
    def __init__(self, exchange_id: str) -> None:
        super().__init__(RejectCode.REJECTED, f"ccxt has no exchange {exchange_id!r}")


# -- building an exchange (shared with the streams) ------------------------------------------------


def sandbox_requested(account: Account, credentials: CcxtCredentials) -> bool:
    """Either the credentials or the account asking for the sandbox gets the sandbox (never live by
    accident)."""
    return credentials.sandbox or bool(account.broker_config.get("sandbox", False))


def timeout_seconds(account: Account) -> float:
    return float(account.broker_config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))


def quote_currency(account: Account) -> str:
    return str(account.broker_config.get("quote_currency") or account.currency)


def build_exchange(module: Any, credentials: CcxtCredentials, *, sandbox: bool, timeout: float) -> Any:
    """A ccxt exchange of `module` (`ccxt` or `ccxt.pro`) for the credentials: spot markets, rate
    limiter on, timeout set, sandbox mode when asked, pointed at the endpoint override if any."""
    exchange_id = credentials.exchange
    exchange_class = getattr(module, exchange_id, None)
    if exchange_class is None:
        raise UnknownExchange(exchange_id)
    config: dict[str, Any] = {
        "apiKey": credentials.api_key,
        "secret": credentials.secret.get_secret_value(),
        "enableRateLimit": True,
        "timeout": int(timeout * 1000),
        "options": {
            "defaultType": "spot",
            "fetchCurrencies": False,  # a private call per cold start that we do not need
            "fetchMargins": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
        },
    }
    if credentials.password is not None:
        config["password"] = credentials.password.get_secret_value()
    exchange = exchange_class(config)
    markets_option = exchange.options.get("fetchMarkets")
    if isinstance(markets_option, dict) and "types" in markets_option:
        markets_option["types"] = ["spot"]
    elif isinstance(markets_option, list):
        exchange.options["fetchMarkets"] = ["spot"]
    if sandbox:
        if not exchange.urls.get("test"):  # many exchanges declare the key with no URL
            raise NoSandbox(exchange_id)
        exchange.set_sandbox_mode(True)
    override = endpoint_override(exchange_id)
    if override:
        redirect(exchange, override)
    return exchange


def redirect(exchange: Any, base: str) -> None:
    """Swap scheme and host of every API URL of the exchange for `base` (`ws://` for websockets),
    keeping each path."""
    for section in URL_SECTIONS:
        if section in exchange.urls:
            exchange.urls[section] = _rewritten(exchange.urls[section], base)


def _rewritten(value: Any, base: str) -> Any:
    if isinstance(value, dict):
        return {key: _rewritten(item, base) for key, item in value.items()}
    if isinstance(value, list):
        return [_rewritten(item, base) for item in value]
    if not isinstance(value, str) or "://" not in value:
        return value
    target = urlsplit(websocket_url(base) if value.startswith(("ws://", "wss://")) else base)
    original = urlsplit(value)
    return urlunsplit((target.scheme, target.netloc, original.path, original.query, original.fragment))


# -- converting ccxt's unified structures (shared with the streams) --------------------------------


def decimal(value: Any) -> Decimal | None:
    """A ccxt number (float, str, int or None) as an exact Decimal; floats through their shortest repr."""
    if value is None or isinstance(value, bool):
        return None
    try:
        parsed = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return Decimal(canonical(parsed))  # 40000.0 and 40000.00000000 alike -> 40000


def canonical(value: Decimal) -> str:
    """`0.00100000` and `0.001` alike -> `0.001` (fill references must not depend on formatting)."""
    return format(value.normalize(), "f") if value else "0"


def utc(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if isinstance(ms, int | float) else None


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _order_status(raw_status: Any, filled: Decimal, amount: Decimal) -> OrderStatus:
    if raw_status in ("closed",):
        return OrderStatus.FILLED if amount <= 0 or filled >= amount else OrderStatus.CANCELLED
    if raw_status in ("canceled", "cancelled"):
        return OrderStatus.CANCELLED
    if raw_status == "expired":
        return OrderStatus.EXPIRED
    if raw_status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED  # open, canceling, unknown


def _order_type(raw: Mapping[str, Any], ours: Order | None) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    triggered = raw.get("triggerPrice") or raw.get("stopPrice")
    if triggered:
        return OrderType.STOP_LIMIT if "limit" in kind else OrderType.STOP
    if "limit" in kind:
        return OrderType.LIMIT
    if "market" in kind:
        return OrderType.MARKET
    return ours.order_type if ours is not None else OrderType.MARKET


def _time_in_force(raw: Mapping[str, Any], ours: Order | None) -> TimeInForce:
    sent = str(raw.get("timeInForce") or "").upper()
    if ours is not None and ours.time_in_force is TimeInForce.DAY and sent in ("", "GTC"):
        return TimeInForce.DAY  # our documented mapping, reported back as the order was asked
    if sent in ("IOC", "FOK"):
        return TimeInForce.IOC
    if sent in ("GTC", "PO", "GTX", "GTD"):
        return TimeInForce.GTC
    return ours.time_in_force if ours is not None else TimeInForce.GTC


def reported_fee(raw: Mapping[str, Any], quote: str, base: str, average: Decimal | None) -> Decimal:
    """The order's fees so far in the quote currency (base-currency fees at the average price)."""
    entries = raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])
    total = Decimal(0)
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        cost = decimal(entry.get("cost")) or Decimal(0)
        currency = entry.get("currency")
        if currency == quote:
            total += cost
        elif currency == base and average is not None:
            total += cost * average
    return tidy(total, 12)


def to_broker_order(
    raw: Mapping[str, Any],
    *,
    ours: Order | None = None,
    fee: Decimal | None = None,
    now: datetime | None = None,
) -> BrokerOrder:
    """A ccxt unified order as our `BrokerOrder`; missing fields come from our own order when known.
    `fee`: the fees so far when the caller knows better than the answer (streams); else from `raw`."""
    client_order_id = ours.client_order_id if ours is not None else raw.get("clientOrderId")
    if not client_order_id:
        raise ValueError("order without a client order id")
    broker_id = raw.get("id")
    if broker_id is None or broker_id == "":
        raise ValueError(f"order {client_order_id} without an exchange order id")
    symbol = raw.get("symbol") or (ours.symbol if ours is not None else None)
    if not symbol:
        raise ValueError(f"order {client_order_id} without a symbol")
    side_text = raw.get("side") or (ours.side.value if ours is not None else None)
    if side_text not in ("buy", "sell"):
        raise ValueError(f"order {client_order_id} has side {side_text!r}")
    amount = decimal(raw.get("amount"))
    if amount is None:
        amount = ours.quantity if ours is not None else Decimal(0)
    filled = decimal(raw.get("filled")) or Decimal(0)
    average = decimal(raw.get("average"))
    cost = decimal(raw.get("cost"))
    if average is None and filled > 0 and cost:
        average = tidy(cost / filled, 12)
    if filled > 0 and average is None:
        raise ValueError(f"order {client_order_id} filled {filled} without a price")
    order_type = _order_type(raw, ours)
    limit_price = decimal(raw.get("price")) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop_price = (
        decimal(raw.get("triggerPrice") or raw.get("stopPrice"))
        if order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        else None
    )
    moment = now or datetime.now(UTC)
    submitted = utc(raw.get("timestamp")) or (ours.created_at if ours is not None else moment)
    updated = utc(raw.get("lastUpdateTimestamp")) or utc(raw.get("lastTradeTimestamp")) or submitted
    fills: list[BrokerFill] = []
    if filled > 0:
        assert average is not None
        market_quote, market_base = _quote_base(str(symbol))
        paid = fee if fee is not None else reported_fee(raw, market_quote, market_base, average)
        fills.append(
            BrokerFill(
                ref=f"{broker_id}@{canonical(filled)}",
                quantity=filled,
                price=average,
                fee=paid,
                ts=utc(raw.get("lastTradeTimestamp")) or updated,
                cumulative_quantity=filled,
                cumulative_average=average,
            )
        )
    status = _order_status(raw.get("status"), filled, amount)
    info = raw.get("info")
    reason = None
    if status is OrderStatus.REJECTED:
        reason = str(info.get("msg") or info.get("r") or "rejected") if isinstance(info, Mapping) else "rejected"
    return BrokerOrder(
        client_order_id=str(client_order_id),
        broker_order_id=str(broker_id),
        symbol=str(symbol),
        side=OrderSide(side_text),
        quantity=amount,
        order_type=order_type,
        time_in_force=_time_in_force(raw, ours),
        limit_price=limit_price,
        stop_price=stop_price,
        status=status,
        filled_quantity=filled,
        fills=fills,
        reject_reason=reason,
        submitted_at=submitted,
        updated_at=max(updated, submitted),
    )


def _quote_base(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return quote.split(":")[0], base


def to_bar(symbol: str, timeframe: str, candle: Any) -> Bar:
    """A ccxt OHLCV row `[ms, open, high, low, close, volume]` as our Bar (ValueError when malformed)."""
    if not isinstance(candle, list | tuple) or len(candle) < 6:
        raise ValueError(f"not an OHLCV row: {candle!r}")
    opened = utc(candle[0])
    values = [decimal(v) for v in candle[1:6]]
    if opened is None or any(v is None for v in values[:4]):
        raise ValueError(f"incomplete OHLCV row: {candle!r}")
    open_, high, low, close, volume = values
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        ts=opened,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume or Decimal(0),
    )


# -- the adapter -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fitted:
    amount: Decimal
    price: Decimal | None
    stop: Decimal | None


class CcxtBroker:
    """The broker port (and pull-mode market data) over one ccxt exchange account; see the module."""

    def __init__(self, exchange: Any, account: Account, *, symbols: Iterable[str] = (), sandbox: bool = False) -> None:
        self.exchange = exchange
        self.tenant_id = account.tenant_id
        self.account_id = account.account_id
        self.name = f"ccxt:{exchange.id}"
        self.quote = quote_currency(account)
        self.symbols = frozenset(symbols)
        self.sandbox = sandbox
        self._markets_loaded = False

    @classmethod
    def connect(
        cls,
        account: Account,
        credentials: CcxtCredentials,
        *,
        symbols: Iterable[str] = (),
        timeout: float | None = None,
    ) -> CcxtBroker:
        configured = account.broker_config.get("exchange")
        if configured and configured != credentials.exchange:
            raise BrokerRejected(
                RejectCode.REJECTED,
                f"account {account.account_id} is configured for {configured} but its credentials are for "
                f"{credentials.exchange}",
            )
        sandbox = sandbox_requested(account, credentials)
        exchange = build_exchange(
            ccxt, credentials, sandbox=sandbox, timeout=timeout if timeout is not None else timeout_seconds(account)
        )
        return cls(exchange, account, symbols=symbols, sandbox=sandbox)

    # -- the broker port ---------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        market = self._market(order.symbol)
        kind, tif_params = self._shape(order, market)
        fitted = self._fit(order, market)
        params: dict[str, Any] = {"clientOrderId": order.client_order_id, **tif_params}
        if fitted.stop is not None:
            params["triggerPrice"] = float(fitted.stop)
        price = float(fitted.price) if fitted.price is not None else None
        raw = self._call(
            lambda: self.exchange.create_order(
                order.symbol, kind, order.side.value, float(fitted.amount), price, params
            ),
            "submit",
            order.symbol,
            submitting=True,
        )
        sent_as = raw.get("clientOrderId")
        if sent_as and sent_as != order.client_order_id:
            log.error("%s answered order %s with client order id %s", self.name, order.client_order_id, sent_as)
        return to_broker_order(raw, ours=order.model_copy(update={"quantity": fitted.amount}))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        ours = self._ledger_order(client_order_id)
        raw = self._find(client_order_id, ours)
        return to_broker_order(raw, ours=ours) if raw is not None else None

    def cancel(self, client_order_id: str) -> BrokerOrder:
        ours = self._ledger_order(client_order_id)
        raw = self._find(client_order_id, ours)
        if raw is None:
            raise BrokerRejected(RejectCode.REJECTED, f"order {client_order_id} not found at {self.exchange.id}")
        known = to_broker_order(raw, ours=ours)
        if known.status.final:
            return known
        try:
            answer = self.exchange.cancel_order(known.broker_order_id, known.symbol)
        except (ccxt.InvalidOrder, ccxt.OperationRejected) as refused:
            # Typically filled or cancelled meanwhile ("Unknown order sent."): report what it is now.
            again = self._find(client_order_id, ours)
            current = to_broker_order(again, ours=ours) if again is not None else None
            if current is not None and current.status.final:
                return current
            raise self._mapped(refused, "cancel", known.symbol, False) from refused
        except ccxt.BaseError as error:
            raise self._mapped(error, "cancel", known.symbol, False) from error
        # The answer names the cancel request, not the order (Binance's clientOrderId is the cancel's
        # own id): keep what the order is, update what the cancel changed.
        kept = ("clientOrderId", "timestamp", "datetime")  # the answer's are the cancel request's
        merged = {**raw, **{k: v for k, v in answer.items() if v is not None and k not in kept}}
        merged["clientOrderId"] = client_order_id
        return to_broker_order(merged, ours=ours)

    def open_orders(self) -> list[BrokerOrder]:
        ledger = self._ledger_orders()
        raws = self._call(lambda: self._open_raw(ledger), "open orders")
        return self._converted(raws, ledger)

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        ledger = self._ledger_orders()
        symbols = sorted(self.symbols | {o.symbol for o in ledger.values()})
        raws = [raw for symbol in symbols for raw in self._recent(symbol)]
        orders = self._converted(raws, ledger)
        return [o for o in orders if o.updated_at >= since or not o.status.final]

    def positions(self) -> list[BrokerPosition]:
        return self._holdings(self._balance())

    def account(self) -> BrokerAccount:
        balance = self._balance()
        holdings = [(p, self._last_price(p.symbol)) for p in self._holdings(balance)]
        quote = balance.get(self.quote) or {}
        cash = decimal(quote.get("total")) or Decimal(0)
        free = decimal(quote.get("free")) or Decimal(0)
        equity = cash
        for position, last in holdings:
            equity += position.quantity * (last if last is not None else position.average_price)
        return BrokerAccount(cash=cash, equity=tidy(equity, 12), buying_power=free, currency=self.quote)

    # -- market data -------------------------------------------------------------------------------

    def historical_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime | None = None, limit: int | None = None
    ) -> list[Bar]:
        self._market(symbol, trading=False)
        timeframes = self.exchange.timeframes or {}
        if timeframe not in timeframes:
            raise BrokerRejected(
                RejectCode.REJECTED,
                f"{self.exchange.id} has no {timeframe} candles (it offers {', '.join(timeframes) or 'none'})",
            )
        since = millis(start)
        until = millis(end) if end is not None else None
        bars: list[Bar] = []
        while limit is None or len(bars) < limit:
            want = OHLCV_PAGE if limit is None else min(OHLCV_PAGE, limit - len(bars))
            params = {"until": until} if until is not None else {}
            fetch = functools.partial(self.exchange.fetch_ohlcv, symbol, timeframe, since, want, params)
            page = self._call(fetch, "candles", symbol)
            rows = [r for r in page if r and r[0] >= since and (until is None or r[0] <= until)]
            for row in rows:
                try:
                    bars.append(to_bar(symbol, timeframe, row))
                except ValueError as bad:
                    log.warning("%s: skipping a malformed %s candle of %s: %s", self.name, timeframe, symbol, bad)
            if not rows or len(page) < want:
                break
            since = int(rows[-1][0]) + 1
        return bars[:limit] if limit is not None else bars

    # -- internals ---------------------------------------------------------------------------------

    def _call(self, call: Callable[[], T], action: str, symbol: str | None = None, *, submitting: bool = False) -> T:
        try:
            return call()
        except ccxt.BaseError as error:
            raise self._mapped(error, action, symbol, submitting) from error

    def _mapped(self, error: Exception, action: str, symbol: str | None, submitting: bool) -> BrokerError:
        """ccxt's exception as ours (see the module docstring); the exchange's words are kept."""
        text = str(error)
        where = f"{self.exchange.id} {action}" + (f" {symbol}" if symbol else "")
        if isinstance(error, ccxt.RequestTimeout):
            return BrokerTimeout(f"{where}: no answer within {self.exchange.timeout / 1000:g}s", text)
        if isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            if CREDENTIALS_REFUSED.search(text):
                return BrokerAuthFailed(f"{self.exchange.id} refused the API key", text)
            return RateLimited(f"{where}: rate-limited", text, retry_after=self._retry_after())
        if isinstance(error, ccxt.OnMaintenance):
            if submitting:
                return BrokerRejected(RejectCode.MARKET_CLOSED, f"{self.exchange.id} is under maintenance", text)
            return BrokerUnavailable(f"{where}: under maintenance", text)
        if isinstance(error, ccxt.ExchangeNotAvailable) and submitting:
            return BrokerTimeout(f"{where}: the exchange failed; the order may exist (look it up)", text)
        if isinstance(error, ccxt.NetworkError):
            return BrokerUnavailable(f"{where}: unreachable", text)
        if isinstance(error, ccxt.AuthenticationError):
            return BrokerAuthFailed(f"{self.exchange.id} refused the credentials", text)
        if isinstance(error, ccxt.InsufficientFunds):
            return BrokerRejected(RejectCode.INSUFFICIENT_FUNDS, f"{where}: insufficient funds", text)
        if isinstance(error, ccxt.BadSymbol):
            return BrokerRejected(RejectCode.UNKNOWN_SYMBOL, f"{symbol} is not a market on {self.exchange.id}", text)
        if isinstance(error, ccxt.DuplicateOrderId) or "Duplicate order sent" in text:
            return DuplicateClientOrderId(f"{where}: client order id already used", text)
        if isinstance(error, ccxt.MarketClosed):
            return BrokerRejected(RejectCode.MARKET_CLOSED, f"{where}: market closed", text)
        if isinstance(error, ccxt.InvalidOrder | ccxt.BadRequest):
            if any(word.lower() in text.lower() for word in PRECISION_WORDS):
                return BrokerRejected(RejectCode.PRECISION, f"{where}: outside the market's precision or limits", text)
            if "quantity" in text.lower() or "amount" in text.lower():
                return BrokerRejected(RejectCode.INVALID_QUANTITY, f"{where}: invalid quantity", text)
            return BrokerRejected(RejectCode.REJECTED, f"{where}: rejected", text)
        if isinstance(error, ccxt.OperationRejected | ccxt.NotSupported | ccxt.ArgumentsRequired):
            return BrokerRejected(RejectCode.REJECTED, f"{where}: rejected", text)
        if submitting:
            return BrokerTimeout(f"{where}: unexpected answer; the order may exist (look it up)", text)
        return BrokerUnavailable(f"{where}: failed", text)

    def _retry_after(self) -> float | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            self._call(self.exchange.load_markets, "load markets")
            self._markets_loaded = True

    def _market(self, symbol: str, *, trading: bool = True) -> dict[str, Any]:
        self._load_markets()
        market = self.exchange.markets.get(symbol)
        if market is None:
            raise BrokerRejected(RejectCode.UNKNOWN_SYMBOL, f"{symbol} is not a market on {self.exchange.id}")
        if trading and market.get("active") is False:
            raise BrokerRejected(RejectCode.MARKET_CLOSED, f"{symbol} is not trading on {self.exchange.id}")
        return dict(market)

    def _shape(self, order: Order, market: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(ccxt order type, time-in-force params); refuses a type the exchange or market lacks."""
        if order.order_type in STOP_FLAGS and not any(self.exchange.has.get(f) for f in STOP_FLAGS[order.order_type]):
            raise BrokerRejected(
                RejectCode.REJECTED, f"{order.order_type.value} orders are not supported by {self.exchange.id}"
            )
        info = market.get("info")
        listed = info.get("orderTypes") if isinstance(info, Mapping) else None
        if isinstance(listed, list) and BINANCE_TYPE_NAMES[order.order_type] not in listed:
            raise BrokerRejected(
                RejectCode.REJECTED,
                f"{order.order_type.value} orders are not supported by {self.exchange.id} for {order.symbol} "
                f"(it offers {', '.join(map(str, listed))})",
            )
        kind = "limit" if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else "market"
        if kind == "market":
            return kind, {}
        tif = "IOC" if order.time_in_force is TimeInForce.IOC else "GTC"  # DAY -> GTC, see the module docstring
        return kind, {"timeInForce": tif}

    def _fit(self, order: Order, market: Mapping[str, Any]) -> _Fitted:
        """Round to the market's precision, then check its limits; PRECISION rejections name the value."""
        symbol = order.symbol
        amount = self._rounded("amount", order.quantity, market)
        limits = market.get("limits") or {}
        self._within(symbol, "amount", order.quantity, amount, limits.get("amount"))
        price = stop = None
        if order.limit_price is not None:
            price = self._rounded("price", order.limit_price, market)
            self._within(symbol, "price", order.limit_price, price, limits.get("price"))
        if order.stop_price is not None:
            stop = self._rounded("price", order.stop_price, market)
            self._within(symbol, "stop price", order.stop_price, stop, limits.get("price"))
        cost_limits = limits.get("cost") or {}
        if cost_limits.get("min") is not None or cost_limits.get("max") is not None:
            reference = price or stop or self._last_price(symbol)
            if reference is not None:
                notional = amount * reference
                minimum, maximum = decimal(cost_limits.get("min")), decimal(cost_limits.get("max"))
                if minimum is not None and notional < minimum:
                    raise BrokerRejected(
                        RejectCode.PRECISION,
                        f"{symbol}: notional {canonical(notional)} (amount {canonical(amount)} x price "
                        f"{canonical(reference)}) is below the minimum {canonical(minimum)}",
                    )
                if maximum is not None and notional > maximum:
                    raise BrokerRejected(
                        RejectCode.PRECISION,
                        f"{symbol}: notional {canonical(notional)} is above the maximum {canonical(maximum)}",
                    )
        return _Fitted(amount, price, stop)

    def _rounded(self, what: str, value: Decimal, market: Mapping[str, Any]) -> Decimal:
        symbol = market["symbol"]
        step = (market.get("precision") or {}).get(what)
        convert = self.exchange.amount_to_precision if what == "amount" else self.exchange.price_to_precision
        try:
            rounded = decimal(convert(symbol, format(value, "f")))
        except ccxt.InvalidOrder:
            rounded = Decimal(0)
        if rounded is None or rounded <= 0:
            raise BrokerRejected(
                RejectCode.PRECISION,
                f"{symbol}: {what} {canonical(value)} rounds to 0 at the market's precision {_step(step)}",
            )
        return rounded

    @staticmethod
    def _within(symbol: str, what: str, asked: Decimal, value: Decimal, bounds: Mapping[str, Any] | None) -> None:
        bounds = bounds or {}
        shown = canonical(asked) + ("" if value == asked else f" (rounded to {canonical(value)})")
        minimum, maximum = decimal(bounds.get("min")), decimal(bounds.get("max"))
        if minimum is not None and value < minimum:
            raise BrokerRejected(
                RejectCode.PRECISION, f"{symbol}: {what} {shown} is below the minimum {canonical(minimum)}"
            )
        if maximum is not None and maximum > 0 and value > maximum:
            raise BrokerRejected(
                RejectCode.PRECISION, f"{symbol}: {what} {shown} is above the maximum {canonical(maximum)}"
            )

    def _last_price(self, symbol: str) -> Decimal | None:
        ticker = self._call(lambda: self.exchange.fetch_ticker(symbol), "ticker", symbol)
        return decimal(ticker.get("last") or ticker.get("close"))

    def _ledger_order(self, client_order_id: str) -> Order | None:
        order = OrderRepository().get(self.tenant_id, client_order_id)
        return order if order is not None and order.account_id == self.account_id else None

    def _ledger_orders(self) -> dict[str, Order]:
        return {o.client_order_id: o for o in OrderRepository().list_for_account(self.tenant_id, self.account_id)}

    def _find(self, client_order_id: str, ours: Order | None) -> Mapping[str, Any] | None:
        """The exchange's order with our client order id, or None (see "Looking an order up")."""
        self._load_markets()
        symbols = [ours.symbol] if ours is not None else sorted(self.symbols)
        for symbol in symbols:
            if symbol not in self.exchange.markets:
                continue  # no such market, so no such order (submitting it is rejected naming the symbol)
            if self.exchange.id in LOOKUP_BY_CLIENT_ID:
                raw = self._fetch_by_client_id(client_order_id, symbol)
            else:
                raw = self._search(client_order_id, symbol)
            if raw is not None:
                return raw
        return None

    def _fetch_by_client_id(self, client_order_id: str, symbol: str) -> Mapping[str, Any] | None:
        try:
            found: Mapping[str, Any] = self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as error:
            raise self._mapped(error, "order lookup", symbol, False) from error
        return {**found, "clientOrderId": found.get("clientOrderId") or client_order_id}

    def _search(self, client_order_id: str, symbol: str) -> Mapping[str, Any] | None:
        def matching(orders: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
            hits = [o for o in orders if o.get("clientOrderId") == client_order_id]
            return max(hits, key=lambda o: o.get("timestamp") or 0) if hits else None

        has = self.exchange.has
        if has.get("fetchOpenOrders"):
            found = matching(self._call(lambda: self.exchange.fetch_open_orders(symbol), "open orders", symbol))
            if found is not None:
                return found
        return matching(self._recent(symbol))

    def _open_raw(self, ledger: Mapping[str, Order]) -> list[Mapping[str, Any]]:
        try:
            result: list[Mapping[str, Any]] = self.exchange.fetch_open_orders()
            return result
        except ccxt.ArgumentsRequired:  # this exchange wants a symbol
            symbols = sorted(self.symbols | {o.symbol for o in ledger.values() if not o.status.final})
            return [order for symbol in symbols for order in self.exchange.fetch_open_orders(symbol)]

    def _recent(self, symbol: str) -> list[Mapping[str, Any]]:
        return self._call(lambda: self._recent_raw(symbol), "recent orders", symbol)

    def _recent_raw(self, symbol: str) -> list[Mapping[str, Any]]:
        has = self.exchange.has
        if has.get("fetchOrders"):
            result: list[Mapping[str, Any]] = self.exchange.fetch_orders(symbol, None, RECENT_LIMIT)
            return result
        found: list[Mapping[str, Any]] = []
        if has.get("fetchOpenOrders"):
            found += self.exchange.fetch_open_orders(symbol)
        if has.get("fetchClosedOrders"):
            found += self.exchange.fetch_closed_orders(symbol, None, RECENT_LIMIT)
        return found

    def _converted(self, raws: Iterable[Mapping[str, Any]], ledger: Mapping[str, Order]) -> list[BrokerOrder]:
        orders: dict[str, BrokerOrder] = {}
        for raw in raws:
            ours = ledger.get(str(raw.get("clientOrderId") or ""))
            try:
                order = to_broker_order(raw, ours=ours)
            except ValueError as bad:
                log.warning("%s: skipping an order the exchange reported malformed: %s", self.name, bad)
                continue
            orders[order.broker_order_id] = order
        return sorted(orders.values(), key=lambda o: (o.submitted_at, o.broker_order_id))

    def _balance(self) -> Mapping[str, Any]:
        self._load_markets()
        balance: Mapping[str, Any] = self._call(self.exchange.fetch_balance, "balance")
        return balance

    def _holdings(self, balance: Mapping[str, Any]) -> list[BrokerPosition]:
        """Positions from the balances (see the module docstring for the average price)."""
        totals = balance.get("total") or {}
        ledger = {p.symbol: p for p in PositionRepository().list(self.tenant_id, self.account_id)}
        positions = []
        for asset, total in sorted(totals.items()):
            quantity = decimal(total)
            symbol = f"{asset}/{self.quote}"
            if asset == self.quote or not quantity or symbol not in self.exchange.markets:
                continue
            known = ledger.get(symbol)
            average = known.average_price if known is not None and known.quantity != 0 else Decimal(0)
            positions.append(BrokerPosition(symbol=symbol, quantity=quantity, average_price=average))
        return positions


def _step(step: Any) -> str:
    value = decimal(step) if isinstance(step, int | float | str) else None
    return canonical(value) if value is not None else "unknown"
