"""When each account was last reconciled: kept on the account's `broker_health` item (pk=tenant,
sk=account, beside its circuit breaker), so the next run reads the broker's recent orders from there on.
Only a run that got through marks the account; a skipped one leaves the window open for the next."""

from __future__ import annotations

import contextlib
from datetime import datetime

from tradeflow.domain.types import iso, parse_iso
from tradeflow.reconcile.policy import LOOKBACK, OVERLAP
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable


class ReconcileMarks:
    def __init__(self) -> None:
        self.table = DynamoTable("broker_health")

    def last(self, tenant_id: str, account_id: str) -> datetime | None:
        item = self.table.get({"pk": tenant_id, "sk": account_id}) or {}
        value = item.get("reconciled_at")
        return parse_iso(value) if isinstance(value, str) else None

    def since(self, tenant_id: str, account_id: str, now: datetime) -> datetime:
        """Where this run's look at the broker's recent orders starts."""
        last = self.last(tenant_id, account_id)
        if last is None or last > now:  # never reconciled, or a replay running behind an earlier run
            return now - LOOKBACK
        return max(last - OVERLAP, now - LOOKBACK)

    def mark(self, tenant_id: str, account_id: str, at: datetime) -> None:
        """Record a completed run (never moving the mark back)."""
        with contextlib.suppress(ConditionFailed):  # a later run already marked it
            self.table.update(
                {"pk": tenant_id, "sk": account_id},
                "SET reconciled_at = :at, tenant_id = :t, account_id = :a",
                condition="attribute_not_exists(reconciled_at) OR reconciled_at < :at",
                values={":at": iso(at), ":t": tenant_id, ":a": account_id},
            )
