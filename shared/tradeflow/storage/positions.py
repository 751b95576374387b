"""Positions per (tenant, account, symbol), versioned for conditional updates."""

from __future__ import annotations

from tradeflow.domain import Position
from tradeflow.storage.dynamo import DynamoTable, Write, model_item
from tradeflow.storage.keys import tenant_account


class PositionRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("positions")

    def get(self, tenant_id: str, account_id: str, symbol: str) -> Position:
        item = self.table.get({"pk": tenant_account(tenant_id, account_id), "sk": symbol})
        if item:
            return Position.model_validate(item)
        return Position(tenant_id=tenant_id, account_id=account_id, symbol=symbol)

    def list(self, tenant_id: str, account_id: str) -> list[Position]:
        return [Position.model_validate(i) for i in self.table.query(tenant_account(tenant_id, account_id))]

    def save_write(self, position: Position) -> Write:
        """Write `position` if the stored one still has the version it was read at."""
        expected = position.version
        stored = position.model_copy(update={"version": expected + 1})
        item = model_item(stored, pk=tenant_account(position.tenant_id, position.account_id), sk=position.symbol)
        if expected == 0:
            return Write("positions", "Put", item=item, condition="attribute_not_exists(pk)")
        return Write("positions", "Put", item=item, condition="version = :v", values={":v": expected})
