"""Orders in our ledger, keyed by client order id (design rule 4: written before the broker call)."""

from __future__ import annotations

from typing import Any

from tradeflow.domain import Order
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable, Write, model_item
from tradeflow.storage.keys import tenant_account


class OrderRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("orders")

    @staticmethod
    def item(order: Order) -> dict[str, Any]:
        return model_item(
            order,
            pk=order.tenant_id,
            sk=order.client_order_id,
            account_key=tenant_account(order.tenant_id, order.account_id),
            created_key=f"{iso(order.created_at)}#{order.client_order_id}",
        )

    def create(self, order: Order) -> bool:
        """Record a new order; False when an order with that client order id already exists."""
        return self.table.put_new(self.item(order))

    def get(self, tenant_id: str, client_order_id: str) -> Order | None:
        item = self.table.get({"pk": tenant_id, "sk": client_order_id})
        return Order.model_validate(item) if item else None

    def list_for_account(self, tenant_id: str, account_id: str) -> list[Order]:
        items = self.table.query(tenant_account(tenant_id, account_id), index="by_account")
        return [Order.model_validate(i) for i in items]

    def save_write(self, order: Order) -> Write:
        """Replace the order if it still has the version it was read at."""
        stored = order.model_copy(update={"version": order.version + 1})
        return Write("orders", "Put", item=self.item(stored), condition="version = :v", values={":v": order.version})

    def save(self, order: Order) -> Order:
        write = self.save_write(order)
        assert write.item is not None
        try:
            self.table.put(write.item, condition=write.condition, values=write.values)
        except ConditionFailed:
            raise
        return order.model_copy(update={"version": order.version + 1})
