"""Reading a tenant's audit trail back: newest first, by time range, action prefix and subject.

Audit items are keyed pk=tenant, sk=`<iso time>#<event id>`, so a time range is a key condition (start
inclusive, end exclusive) and only the action and subject filters cost reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tradeflow.domain import AuditEvent
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.paging import filled_page


class AuditQuery:
    def __init__(self) -> None:
        self.table = DynamoTable("audit")

    def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        start_key: Mapping[str, Any] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        action_prefix: str | None = None,
        subject: str | None = None,
    ) -> tuple[list[AuditEvent], dict[str, Any] | None]:
        """One page of events at `since` <= ts < `until`, newest first, and the key to continue from."""
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        sk_condition = None
        if since is not None and until is not None:
            sk_condition = "#sk BETWEEN :since AND :until"
        elif since is not None:
            sk_condition = "#sk >= :since"
        elif until is not None:
            sk_condition = "#sk < :until"
        if since is not None:
            values[":since"] = iso(since)
        if until is not None:
            values[":until"] = iso(until)  # `<iso>#<id>` sorts after `<iso>`: events at `until` are out
        filters = []
        if action_prefix:
            filters.append("begins_with(#action, :action)")
            names["#action"], values[":action"] = "action", action_prefix
        if subject:
            filters.append("#subject = :subject")
            names["#subject"], values[":subject"] = "subject", subject
        items, last = filled_page(
            self.table,
            tenant_id,
            limit=limit,
            start=start_key,
            sk_condition=sk_condition,
            values=values or None,
            names=names or None,
            filter_expression=" AND ".join(filters) or None,
            forward=False,
        )
        return [AuditEvent.model_validate(i) for i in items], last
