"""A new broker account's opening balance.

A broker account is opened through the API with no money in our ledger: its money is at the broker.
The first reconciliation that finds the account's ledger empty records the broker's cash as the
opening deposit, in one transaction with the account's cash (conditional on `risk_seq`, like every
change to an account), so risk checks have real buying power and the account's cash stays the sum of
its ledger. Concurrent runs cannot both record it: the loser's condition fails and it then finds the
ledger no longer empty.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Account
from tradeflow.execution.accounts import opening_deposit
from tradeflow.runtime.retry import backoff
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import TransactionConflict, transact
from tradeflow.storage.keys import tenant_account
from tradeflow.storage.ledger import LedgerRepository

MAX_ATTEMPTS = 8


class OpeningBalances:
    def __init__(self) -> None:
        self.accounts = AccountRepository()
        self.ledger = LedgerRepository()
        self.audit = AuditRepository()

    def ledger_is_empty(self, tenant_id: str, account_id: str) -> bool:
        return not self.ledger.table.query(tenant_account(tenant_id, account_id), limit=1)

    def record(self, tenant_id: str, account_id: str, cash: Decimal, at: datetime, actor: str) -> Account | None:
        """Record `cash` as the opening deposit if the account's ledger is empty; the updated account,
        or None when the ledger already had entries."""
        for attempt in range(MAX_ATTEMPTS):
            if not self.ledger_is_empty(tenant_id, account_id):
                return None
            account = self.accounts.get(tenant_id, account_id)
            if account is None:
                return None
            opened = account.model_copy(update={"cash": cash, "starting_cash": cash, "updated_at": at})
            deposit = opening_deposit(tenant_id, account_id, cash, at, "opening balance at the broker")
            event = self.audit.event(
                tenant_id,
                at,
                actor,
                "account.opening_balance",
                account_id,
                {"broker": account.broker, "cash": str(cash)},
            )
            try:
                transact(
                    [
                        self.accounts.replace_write(opened, account.risk_seq),
                        self.ledger.new_write(deposit),
                        self.audit.new_write(event),
                    ]
                )
            except TransactionConflict:
                backoff(attempt)
                continue
            return opened.model_copy(update={"risk_seq": account.risk_seq + 1})
        return None
