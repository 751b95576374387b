"""The capital ledger: every cash movement of an account, in time order."""

from __future__ import annotations

from tradeflow.domain import LedgerEntry
from tradeflow.storage.dynamo import DynamoTable, Write, model_item
from tradeflow.storage.keys import tenant_account, timed


class LedgerRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("ledger")

    def new_write(self, entry: LedgerEntry) -> Write:
        item = model_item(
            entry, pk=tenant_account(entry.tenant_id, entry.account_id), sk=timed(entry.ts, entry.entry_id)
        )
        return Write("ledger", "Put", item=item, condition="attribute_not_exists(pk)")

    def list(self, tenant_id: str, account_id: str) -> list[LedgerEntry]:
        return [LedgerEntry.model_validate(i) for i in self.table.query(tenant_account(tenant_id, account_id))]
