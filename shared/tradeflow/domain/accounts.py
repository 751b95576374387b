"""Trading accounts and the capital ledger."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field

from tradeflow.domain.base import Model
from tradeflow.domain.types import Money, Quantity, ResourceId, Symbol, TenantId, UtcDatetime


class PendingExposure(Model):
    """Quantity and notional reserved by approved intents whose orders are not final yet."""

    quantity: Quantity = Decimal(0)  # signed: buys positive, sells negative
    notional: Money = Decimal(0)
    opens: int = 0  # intents that open a position where there was none


class Account(Model):
    """A broker account as our ledger sees it.

    `risk_seq` is bumped by every change that affects risk (a decision reserving exposure, a fill, a
    release), so two concurrent risk decisions cannot both pass a limit they would breach together:
    the second one's conditional write fails and it decides again on fresh numbers.
    """

    tenant_id: TenantId
    account_id: ResourceId
    name: str = ""
    broker: str = "paper"  # paper | alpaca | ccxt:<exchange>
    mode: str = "paper"  # paper | live
    currency: str = "USD"
    starting_cash: Money = Decimal(0)
    cash: Money = Decimal(0)
    pending: dict[Symbol, PendingExposure] = Field(default_factory=dict)
    trading_day: str | None = None  # the UTC date the day's P&L counters refer to
    day_realized_pnl: Money = Decimal(0)
    broker_config: dict[str, Any] = Field(default_factory=dict)  # e.g. paper fill model, slippage
    risk_seq: int = 0
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def realized_today(self, day: str) -> Decimal:
        return self.day_realized_pnl if self.trading_day == day else Decimal(0)


class LedgerEntryKind(StrEnum):
    DEPOSIT = "deposit"
    TRADE = "trade"  # cash paid (buy) or received (sell) for a fill
    FEE = "fee"
    RESET = "reset"


class LedgerEntry(Model):
    """One cash movement; the account's cash is the sum of its entries."""

    entry_id: str
    tenant_id: TenantId
    account_id: ResourceId
    ts: UtcDatetime
    kind: LedgerEntryKind
    amount: Money  # signed: + into the account, - out of it
    balance_after: Money
    reference: str  # fill id, deposit id ...
    symbol: Symbol | None = None
    realized_pnl: Money | None = None
