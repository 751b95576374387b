"""Messages on the `orders` queue: intents to submit, broker updates to record, and cancel requests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import OrderIntent
from tradeflow.domain.base import Model
from tradeflow.domain.types import ResourceId, Symbol, TenantId, UtcDatetime


class BrokerUpdate(Model):
    """A broker's report of an order's state and executions (from the paper exchange or a stream)."""

    kind: Literal["broker_update"] = "broker_update"
    tenant_id: TenantId
    account_id: ResourceId
    order: BrokerOrder

    @property
    def group_id(self) -> str:
        return f"{self.tenant_id}#{self.account_id}#{self.order.symbol}"

    @property
    def dedup_id(self) -> str:
        # Real brokers report partial fills as running totals in one fill each: two partial fills share
        # status and fill count, so the filled quantity is part of the id or SQS would drop the second.
        order = self.order
        return f"{order.client_order_id}:{order.status.value}:{len(order.fills)}:{order.filled_quantity}"


class CancelRequest(Model):
    """A request (from the API) to cancel an order at its broker. It travels in the order's own FIFO
    group, behind the intent that created the order."""

    kind: Literal["cancel_request"] = "cancel_request"
    tenant_id: TenantId
    account_id: ResourceId
    symbol: Symbol
    client_order_id: str = Field(min_length=1, max_length=48)
    requested_at: UtcDatetime
    requested_by: str = Field(min_length=1, max_length=200)

    @property
    def group_id(self) -> str:
        return f"{self.tenant_id}#{self.account_id}#{self.symbol}"

    @property
    def dedup_id(self) -> str:
        return f"cancel:{self.client_order_id}"


OrdersMessage = Annotated[OrderIntent | BrokerUpdate | CancelRequest, Field(discriminator="kind")]
orders_message = TypeAdapter(OrdersMessage)
