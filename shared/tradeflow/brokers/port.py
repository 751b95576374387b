"""The broker port, shaped after real brokers (Alpaca, ccxt exchanges).

Every order carries our client order id, and every broker can be asked for an order by that id: that
is what makes a retry after a timeout safe (design rule 4). Errors are mapped to our domain so the
execution function can tell "the broker said no" (final) from "we do not know what happened"
(look the order up) from "the broker could not be reached" (retry later).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from pydantic import Field

from tradeflow.domain import Bar, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.domain.base import Model
from tradeflow.domain.types import Price, Quantity, UtcDatetime


class BrokerFill(Model):
    """One execution. Real brokers often report an order's executions only as running totals (Alpaca's
    `filled_qty`/`filled_avg_price`, ccxt's `filled`/`average`); such a fill carries
    `cumulative_quantity` (the order's filled quantity after it) and `cumulative_average`, its `ref` is
    `<broker order id>@<cumulative quantity>`, and the books apply only the part beyond what they have
    already recorded. So a REST snapshot and a stream event describing the same executions never count
    them twice, whichever arrives first."""

    ref: str  # the broker's id for this execution
    quantity: Quantity
    price: Price
    fee: Price = Decimal(0)
    ts: UtcDatetime
    cumulative_quantity: Quantity | None = None
    cumulative_average: Price | None = None


class BrokerOrder(Model):
    """An order as the broker reports it, with every execution so far."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: OrderSide
    quantity: Quantity
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: Price | None = None
    stop_price: Price | None = None
    status: OrderStatus
    filled_quantity: Quantity = Decimal(0)
    fills: list[BrokerFill] = Field(default_factory=list)
    reject_reason: str | None = None
    submitted_at: UtcDatetime
    updated_at: UtcDatetime


class BrokerPosition(Model):
    symbol: str
    quantity: Quantity
    average_price: Price


class BrokerAccount(Model):
    cash: Price
    equity: Price
    buying_power: Price
    currency: str = "USD"


class RejectCode(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    MARKET_CLOSED = "market_closed"
    INVALID_QUANTITY = "invalid_quantity"
    NO_MARKET_DATA = "no_market_data"
    UNKNOWN_SYMBOL = "unknown_symbol"
    PRECISION = "precision"  # amount/price/notional cannot meet the market's precision and limits
    BROKER_UNAVAILABLE = "broker_unavailable"  # the account's circuit breaker is open
    CREDENTIALS = "credentials"  # the broker refused the account's credentials
    REJECTED = "rejected"


class BrokerError(Exception):
    """Base of broker failures; `broker_message` keeps the broker's own words."""

    def __init__(self, message: str, broker_message: str | None = None) -> None:
        super().__init__(message)
        self.broker_message = broker_message or message


class BrokerRejected(BrokerError):
    """The broker refused the order: final, never retried."""

    def __init__(self, code: RejectCode, message: str, broker_message: str | None = None) -> None:
        super().__init__(f"{code.value}: {message}", broker_message)
        self.code = code


class BrokerTimeout(BrokerError):
    """No answer in time: the order may or may not exist. Look it up by client order id."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached or failed before accepting anything: retry later."""


class RateLimited(BrokerUnavailable):
    """The broker refused the request for its rate limit (HTTP 429) before processing it: nothing was
    created, so even an order POST may be sent again after `retry_after` seconds."""

    def __init__(self, message: str, broker_message: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, broker_message)
        self.retry_after = retry_after


class BrokerAuthFailed(BrokerError):
    """The broker refused the account's credentials (wrong, revoked, lacking permission): nothing this
    account sends can succeed until the credentials are rotated."""


class DuplicateClientOrderId(BrokerError):
    """The broker already has an order with this client order id."""


class Broker(Protocol):
    name: str

    def submit(self, order: Order) -> BrokerOrder: ...

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    def cancel(self, client_order_id: str) -> BrokerOrder: ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        """Orders submitted or updated since `since`, open or not, with their executions (what
        reconciliation compares the ledger's recent fills with)."""
        ...

    def positions(self) -> list[BrokerPosition]: ...

    def account(self) -> BrokerAccount: ...


class MarketData(Protocol):
    """Pull-mode market data: a broker's historical bars (Alpaca's data API, ccxt's `fetch_ohlcv`)."""

    def historical_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime | None = None, limit: int | None = None
    ) -> list[Bar]: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
