"""The JSON views of orders, fills and positions, shared by the REST API and the WebSocket broadcaster.

A live update on the `orders`, `fills` or `positions` channel carries exactly what the REST API returns for
that record, so a client that sees a gap in its sequence numbers refetches over REST and gets the same
shapes. This module imports no web framework: the broadcaster function loads it at cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from tradeflow.domain import Fill, Order, OrderSide, OrderStatus, OrderType, SignalRecord, TimeInForce
from tradeflow.domain.types import Money, Price, Quantity
from tradeflow.manual.model import ManualOrder
from tradeflow.portfolio.valuation import MarkedPosition, MarkSource

ViewStatus = Literal[
    "pending",
    "approved",
    "new",
    "submitted",
    "accepted",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "expired",
    "dead_lettered",
]


class OrderView(BaseModel):
    client_order_id: str
    account_id: str
    source: Literal["manual", "strategy"]
    deployment_id: str | None = None
    symbol: str
    side: OrderSide
    quantity: Quantity
    type: OrderType
    time_in_force: TimeInForce
    limit_price: Price | None = None
    stop_price: Price | None = None
    status: ViewStatus
    reason: str | None = Field(default=None, description="why it was rejected, cancelled or dead-lettered")
    filled_quantity: Quantity = Decimal(0)
    average_fill_price: Price | None = None
    fees: Price = Decimal(0)
    broker: str | None = None
    broker_order_id: str | None = None
    client_tag: str | None = None
    created_at: datetime
    updated_at: datetime


def order_view(order: Order, manual: ManualOrder | None = None, journal: SignalRecord | None = None) -> OrderView:
    """An order record as the API shows it; the signal journal supplies the reason of a final, unfilled order."""
    reason = order.reject_reason
    if reason is None and journal is not None and order.status.final and journal.outcome.final:
        reason = journal.reason if order.status is not OrderStatus.FILLED else None
    return OrderView(
        client_order_id=order.client_order_id,
        account_id=order.account_id,
        source="manual" if manual is not None or order.client_order_id.startswith("tfm-") else "strategy",
        deployment_id=order.deployment_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        type=order.order_type,
        time_in_force=order.time_in_force,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        status=order.status.value,
        reason=reason,
        filled_quantity=order.filled_quantity,
        average_fill_price=order.average_fill_price,
        fees=order.fees,
        broker=order.broker,
        broker_order_id=order.broker_order_id,
        client_tag=manual.client_tag if manual else None,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


class PositionView(BaseModel):
    account_id: str
    symbol: str
    quantity: Quantity
    side: str
    average_price: Price
    mark_price: Price
    mark_source: MarkSource
    market_value: Money
    unrealized_pnl: Money
    realized_pnl: Money
    opened_at: datetime | None = None
    updated_at: datetime | None = None


def position_view(marked: MarkedPosition) -> PositionView:
    p = marked.position
    return PositionView(
        account_id=p.account_id,
        symbol=p.symbol,
        quantity=p.quantity,
        side="long" if p.quantity > 0 else "short" if p.quantity < 0 else "flat",
        average_price=p.average_price,
        mark_price=marked.mark,
        mark_source=marked.source,
        market_value=marked.market_value,
        unrealized_pnl=marked.unrealized_pnl,
        realized_pnl=p.realized_pnl,
        opened_at=p.opened_at,
        updated_at=p.updated_at,
    )


class FillView(BaseModel):
    fill_id: str
    account_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: Quantity
    price: Price
    fee: Price
    notional: Price
    ts: str


def fill_view(item: Mapping[str, object] | Fill) -> FillView:
    fill = item if isinstance(item, Fill) else Fill.model_validate(item)
    data = fill.model_dump(mode="json", exclude={"tenant_id", "broker_fill_ref"})
    return FillView(**data, notional=fill.notional)
