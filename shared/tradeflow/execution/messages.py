"""Messages on the `orders` queue: intents to submit, and broker updates to record."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import OrderIntent
from tradeflow.domain.base import Model
from tradeflow.domain.types import ResourceId, TenantId


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
        return f"{self.order.client_order_id}:{self.order.status.value}:{len(self.order.fills)}"


OrdersMessage = Annotated[OrderIntent | BrokerUpdate, Field(discriminator="kind")]
orders_message = TypeAdapter(OrdersMessage)
