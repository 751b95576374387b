"""Fills: executions reported by a broker against one of our orders."""

from __future__ import annotations

from decimal import Decimal

from pydantic import ConfigDict, Field

from tradeflow.domain.base import Model
from tradeflow.domain.orders import OrderSide
from tradeflow.domain.types import Price, Quantity, ResourceId, Symbol, TenantId, UtcDatetime


class Fill(Model):
    model_config = ConfigDict(frozen=True)

    fill_id: str
    tenant_id: TenantId
    account_id: ResourceId
    client_order_id: str
    symbol: Symbol
    side: OrderSide
    quantity: Quantity = Field(gt=0)
    price: Price = Field(gt=0)
    fee: Price = Field(default=Decimal(0), ge=0)
    ts: UtcDatetime
    broker_fill_ref: str  # the broker's own id of this execution

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price
