"""`audit`: the tenant's audit trail, newest first.

Filters: `start` (inclusive) and `end` (exclusive) times, `action` prefix (`order.`, `control.kill_switch`),
`subject` (the id acted upon: an order's client order id, a deployment id, a signal id ...).
Times carry a timezone (`2026-01-05T14:30:00Z`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from tradeflow.api.context import Caller
from tradeflow.api.errors import field_error
from tradeflow.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from tradeflow.api.routers._filters import representable
from tradeflow.domain import AuditEvent
from tradeflow.storage.audit_queries import AuditQuery

router = APIRouter(prefix="/audit", tags=["audit"])


def aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise field_error(f"query.{name}", "must carry a timezone, e.g. 2026-01-05T14:30:00Z")
    if value is not None:
        representable(f"query.{name}", value)
    return value


@router.get("", response_model=Page[AuditEvent], summary="the tenant's audit events, newest first")
def list_audit_events(
    caller: Caller,
    start: Annotated[datetime | None, Query(description="events at or after this time")] = None,
    end: Annotated[datetime | None, Query(description="events before this time")] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100, description="action prefix")] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=256, description="the id acted upon")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEvent]:
    since, until = aware("start", start), aware("end", end)
    if since is not None and until is not None and since >= until:
        raise field_error("query.end", "must be after start")
    events, last = AuditQuery().page(
        caller.tenant_id,
        limit=limit,
        start_key=decode_cursor(cursor, "pk", caller.tenant_id),
        since=since,
        until=until,
        action_prefix=action,
        subject=subject,
    )
    return Page[AuditEvent](items=events, next_cursor=encode_cursor(last))
