"""The signal journal: where every signal's single final outcome is recorded.

Outcome changes are conditional on the current outcome, so two deliveries of one signal cannot record
two outcomes, and a final outcome is never overwritten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tradeflow.domain import Signal, SignalOutcome, SignalRecord
from tradeflow.domain.signals import FINAL_OUTCOMES
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable, Write, model_item


def _not_final_condition(values: dict[str, Any]) -> str:
    names = []
    for i, outcome in enumerate(sorted(FINAL_OUTCOMES)):
        values[f":final{i}"] = outcome.value
        names.append(f":final{i}")
    return f"attribute_exists(pk) AND NOT outcome IN ({', '.join(names)})"


class SignalRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("signals")

    def record_new(self, signal: Signal) -> bool:
        """Journal a freshly emitted signal; False when that signal id was journaled before."""
        record = SignalRecord(
            tenant_id=signal.tenant_id,
            signal_id=signal.signal_id,
            deployment_id=signal.deployment_id,
            account_id=signal.account_id,
            symbol=signal.symbol,
            action=signal.action,
            bar_time=signal.bar_time,
            outcome=SignalOutcome.PENDING,
            created_at=signal.generated_at,
            updated_at=signal.generated_at,
        )
        return self.table.put_new(model_item(record, pk=signal.tenant_id, sk=signal.signal_id))

    def get(self, tenant_id: str, signal_id: str) -> SignalRecord | None:
        item = self.table.get({"pk": tenant_id, "sk": signal_id})
        return SignalRecord.model_validate(item) if item else None

    def list(self, tenant_id: str) -> list[SignalRecord]:
        return [SignalRecord.model_validate(i) for i in self.table.query(tenant_id)]

    def outcome_write(
        self,
        tenant_id: str,
        signal_id: str,
        outcome: SignalOutcome,
        at: datetime,
        *,
        reason: str | None = None,
        expect: Iterable[SignalOutcome] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Write:
        """A transaction element moving the signal to `outcome`; it fails if the signal is already
        final (or, with `expect`, not in one of those outcomes)."""
        values: dict[str, Any] = {":o": outcome.value, ":at": iso(at)}
        sets = ["outcome = :o", "updated_at = :at"]
        if reason is not None:
            values[":r"] = reason
            sets.append("reason = :r")
        for i, (name, value) in enumerate((extra or {}).items()):
            values[f":x{i}"] = value
            sets.append(f"{name} = :x{i}")
        condition = _not_final_condition(values)
        if expect is not None:
            allowed = []
            for i, o in enumerate(expect):
                values[f":e{i}"] = o.value
                allowed.append(f":e{i}")
            # `expect` narrows the allowed current outcomes; it never reopens a final one.
            condition += f" AND outcome IN ({', '.join(allowed)})"
        return Write(
            "signals",
            "Update",
            key={"pk": tenant_id, "sk": signal_id},
            update="SET " + ", ".join(sets),
            condition=condition,
            values=values,
        )

    def set_outcome(
        self,
        tenant_id: str,
        signal_id: str,
        outcome: SignalOutcome,
        at: datetime,
        *,
        reason: str | None = None,
        expect: Iterable[SignalOutcome] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Move the signal to `outcome`; False when its current outcome forbids it."""
        write = self.outcome_write(tenant_id, signal_id, outcome, at, reason=reason, expect=expect, extra=extra)
        assert write.key is not None and write.update is not None
        try:
            self.table.update(write.key, write.update, write.condition, values=write.values)
        except ConditionFailed:
            return False
        return True

    def note_error(self, tenant_id: str, signal_id: str, error: str) -> None:
        """Remember why the last attempt failed, for the dead-letter outcome and for operators."""
        with contextlib.suppress(ConditionFailed):
            self.table.update(
                {"pk": tenant_id, "sk": signal_id},
                "SET last_error = :e",
                condition="attribute_exists(pk)",
                values={":e": error[:1000]},
            )
