"""Reconciliation's boundary models: what a run is asked to do, and what it reports per account."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from tradeflow.domain.base import Model
from tradeflow.domain.types import Money, ResourceId, TenantId, UtcDatetime


class ReconcileRequest(Model):
    """A run: "now" is the schedule's time (design rule 6), optionally narrowed to one tenant or account.

    Read from an EventBridge scheduled event (`time`; `tenant_id`/`account_id` at the top level or in
    `detail`) or a Scheduler payload carrying `scheduled_time`."""

    model_config = ConfigDict(extra="ignore")

    time: UtcDatetime = Field(description="the scheduled time: 'now' for this run")
    tenant_id: TenantId | None = None
    account_id: ResourceId | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ReconcileRequest:
        detail = event.get("detail")
        fields: dict[str, Any] = {**(detail if isinstance(detail, Mapping) else {}), **event}
        if "time" not in fields and "scheduled_time" in fields:
            fields["time"] = fields["scheduled_time"]
        return cls.model_validate(fields)


class RunStatus(StrEnum):
    OK = "ok"  # compared; anything found was repaired or recorded
    HALTED = "halted"  # unexplained differences: the account's trading is halted
    SKIPPED = "skipped"  # the broker could not be reached (or refuses the credentials): next run
    ERROR = "error"  # an unexpected failure; the other accounts were reconciled all the same


class AccountReport(Model):
    tenant_id: str
    account_id: str
    broker: str
    status: RunStatus
    at: UtcDatetime
    since: UtcDatetime | None = None  # the start of the broker's recent orders compared
    differences: int = 0  # every difference found, expiries included
    repaired: int = 0  # differences repaired through the execution ledger path
    unexplained: int = 0  # differences that halted the account
    cancelled: int = 0  # orders cancelled at the broker for their age
    kinds: dict[str, int] = Field(default_factory=dict)  # differences by kind
    cash_difference: Money | None = None  # broker cash minus ledger cash, when they differ
    opening_balance: Money | None = None  # recorded this run for a new broker account
    reason: str | None = None  # why the account was skipped, failed or halted

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return summary

    @property
    def has_cash_difference(self) -> bool:
        return self.cash_difference is not None and self.cash_difference != Decimal(0)
