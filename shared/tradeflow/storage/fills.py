"""Fills, recorded at most once each (conditional on the deterministic fill id)."""

from __future__ import annotations

from tradeflow.domain import Fill
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import DynamoTable, Write, model_item
from tradeflow.storage.keys import tenant_account


class FillRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("fills")

    def new_write(self, fill: Fill) -> Write:
        item = model_item(fill, pk=tenant_account(fill.tenant_id, fill.account_id), sk=fill.fill_id)
        item["ts"] = iso(fill.ts)
        return Write("fills", "Put", item=item, condition="attribute_not_exists(pk)")

    def exists_id(self, tenant_id: str, account_id: str, fill_id: str) -> bool:
        return self.table.get({"pk": tenant_account(tenant_id, account_id), "sk": fill_id}) is not None

    def list(self, tenant_id: str, account_id: str) -> list[Fill]:
        items = self.table.query(tenant_account(tenant_id, account_id), index="by_time")
        return [Fill.model_validate(i) for i in items]
