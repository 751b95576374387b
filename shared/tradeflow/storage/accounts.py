"""Accounts: cash, reserved exposure and the optimistic-concurrency counter `risk_seq`."""

from __future__ import annotations

from typing import Any

from tradeflow.domain import Account
from tradeflow.storage.dynamo import DynamoTable, Write, model_item


class AccountRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("accounts")

    def create(self, account: Account) -> bool:
        return self.table.put_new(self.item(account))

    def get(self, tenant_id: str, account_id: str) -> Account | None:
        item = self.table.get({"pk": tenant_id, "sk": account_id})
        return Account.model_validate(item) if item else None

    def list(self, tenant_id: str) -> list[Account]:
        return [Account.model_validate(i) for i in self.table.query(tenant_id)]

    @staticmethod
    def item(account: Account) -> dict[str, Any]:
        return model_item(account, pk=account.tenant_id, sk=account.account_id)

    def replace_write(self, account: Account, expected_seq: int) -> Write:
        """Replace the account if nobody changed it since we read `expected_seq`; bumps risk_seq."""
        updated = account.model_copy(update={"risk_seq": expected_seq + 1})
        return Write(
            "accounts",
            "Put",
            item=self.item(updated),
            condition="risk_seq = :seq",
            values={":seq": expected_seq},
        )
