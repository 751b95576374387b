"""Audit trail (append-only; a replayed write of the same event id is a no-op)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tradeflow.domain import AuditEvent
from tradeflow.domain.ids import event_id
from tradeflow.storage.dynamo import DynamoTable, Write, model_item
from tradeflow.storage.keys import timed

RETENTION = timedelta(days=400)


class AuditRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("audit")

    @staticmethod
    def event(
        tenant_id: str, ts: datetime, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
    ) -> AuditEvent:
        return AuditEvent(
            event_id=event_id(tenant_id, action, subject),
            tenant_id=tenant_id,
            ts=ts,
            actor=actor,
            action=action,
            subject=subject,
            details=details or {},
        )

    def new_write(self, event: AuditEvent) -> Write:
        item = model_item(
            event,
            pk=event.tenant_id,
            sk=timed(event.ts, event.event_id),
            expires_at=int((event.ts + RETENTION).timestamp()),
        )
        return Write("audit", "Put", item=item)

    def record(self, event: AuditEvent) -> None:
        write = self.new_write(event)
        assert write.item is not None
        self.table.put(write.item)

    def list(self, tenant_id: str) -> list[AuditEvent]:
        return [AuditEvent.model_validate(i) for i in self.table.query(tenant_id)]
