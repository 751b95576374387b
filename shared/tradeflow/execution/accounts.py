"""Opening accounts: the account record and its opening deposit in the ledger, atomically, so an
account's cash always equals the sum of its ledger entries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from tradeflow.domain import Account, LedgerEntry, LedgerEntryKind
from tradeflow.domain.ids import entry_id
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.dynamo import TransactionConflict, Write, transact
from tradeflow.storage.ledger import LedgerRepository


def opening_deposit(tenant_id: str, account_id: str, amount: Decimal, at: datetime, reference: str) -> LedgerEntry:
    """An account's first ledger entry: its opening balance (one per account: the id is fixed)."""
    return LedgerEntry(
        entry_id=entry_id(tenant_id, account_id, "opening-deposit"),
        tenant_id=tenant_id,
        account_id=account_id,
        ts=at,
        kind=LedgerEntryKind.DEPOSIT,
        amount=amount,
        balance_after=amount,
        reference=reference,
    )


def open_account(
    tenant_id: str,
    account_id: str,
    starting_cash: Decimal,
    at: datetime,
    *,
    name: str = "",
    broker: str = "paper",
    mode: str = "paper",
    broker_config: dict[str, Any] | None = None,
    currency: str = "USD",
) -> bool:
    """Create the account with its opening deposit; False when it already exists."""
    config = dict(broker_config or {})
    if broker == "paper":
        config.setdefault("starting_cash", str(starting_cash))
    account = Account(
        tenant_id=tenant_id,
        account_id=account_id,
        name=name or account_id,
        broker=broker,
        mode=mode,
        currency=currency,
        starting_cash=starting_cash,
        cash=starting_cash,
        broker_config=config,
        created_at=at,
        updated_at=at,
    )
    deposit = opening_deposit(tenant_id, account_id, starting_cash, at, "opening deposit")
    accounts = AccountRepository()
    put = Write("accounts", "Put", item=accounts.item(account), condition="attribute_not_exists(pk)")
    try:
        transact([put, LedgerRepository().new_write(deposit)])
    except TransactionConflict:
        return False
    return True
