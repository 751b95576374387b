"""Orders: the intent risk approved, and the order record with its explicit state machine."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from tradeflow.domain.base import Model
from tradeflow.domain.types import Price, Quantity, ResourceId, Symbol, TenantId, UtcDatetime


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"


class OrderStatus(StrEnum):
    NEW = "new"  # recorded in our ledger, not yet acknowledged by the broker
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}


_TERMINAL_FROM_LIVE = {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
# Forward-only transitions. Skips are allowed (a broker may report "filled" for an order we still had
# as "new"), going back never is.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, *_TERMINAL_FROM_LIVE}
    ),
    OrderStatus.SUBMITTED: frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, *_TERMINAL_FROM_LIVE}),
    OrderStatus.ACCEPTED: frozenset({OrderStatus.PARTIALLY_FILLED, *_TERMINAL_FROM_LIVE}),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class InvalidOrderTransition(ValueError):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"order cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return current == target or target in TRANSITIONS[current]


class OrderTerms(Model):
    """What is being asked of the market; shared by the intent and the order record."""

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    side: OrderSide
    quantity: Quantity = Field(gt=0)
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Price | None = None
    stop_price: Price | None = None

    @model_validator(mode="after")
    def _prices_match_type(self) -> OrderTerms:
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise ValueError(f"limit_price is {'required' if needs_limit else 'not allowed'} for {self.order_type}")
        if needs_stop != (self.stop_price is not None):
            raise ValueError(f"stop_price is {'required' if needs_stop else 'not allowed'} for {self.order_type}")
        for name in ("limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        return self


class OrderIntent(OrderTerms):
    """The message on the `orders` queue: an approved, sized order for one signal."""

    kind: Literal["order_intent"] = "order_intent"
    tenant_id: TenantId
    account_id: ResourceId
    client_order_id: str = Field(min_length=1, max_length=48)
    signal_id: str
    deployment_id: ResourceId | None = None
    reference_price: Price  # the price risk sized against; the paper broker's last price
    reserved_notional: Price = Field(default=Decimal(0), ge=0)
    opens: bool = False
    decided_at: UtcDatetime

    @property
    def group_id(self) -> str:
        return f"{self.tenant_id}#{self.account_id}#{self.symbol}"


class Order(OrderTerms):
    """An order in our ledger, keyed by client order id."""

    model_config = ConfigDict(extra="ignore")  # stored items carry key attributes besides the fields

    tenant_id: TenantId
    account_id: ResourceId
    client_order_id: str
    signal_id: str | None = None
    deployment_id: ResourceId | None = None
    broker: str = "paper"
    broker_order_id: str | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: Quantity = Decimal(0)
    average_fill_price: Price | None = None
    fees: Price = Decimal(0)
    reject_reason: str | None = None
    reserved_notional: Price = Decimal(0)  # exposure risk reserved for this order, released by fills
    reserved_open: bool = False  # risk counted this order as opening a position
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    def transition(self, target: OrderStatus) -> Order:
        if not can_transition(self.status, target):
            raise InvalidOrderTransition(self.status, target)
        return self.model_copy(update={"status": target})
