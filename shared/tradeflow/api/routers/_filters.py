"""Query parameters shared by the list endpoints of orders, fills and ledger: a time window and an
account, validated into key conditions over tenant-led keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query

from tradeflow.api.errors import field_error
from tradeflow.domain.types import iso

Since = Annotated[datetime | None, Query(description="only items at or after this time (ISO 8601 with offset)")]
Until = Annotated[datetime | None, Query(description="only items before this time (ISO 8601 with offset)")]
AccountQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SymbolQuery = Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._/-]+$")]


def representable(location: str, value: datetime) -> datetime:
    """`value` (timezone-aware) in UTC, with a day to spare either side: a 422 naming the field, not an
    OverflowError, for `0001-01-01T00:00:00+01:00` or `9999-12-31T23:59:59-01:00`."""
    try:
        utc = value.astimezone(UTC)
        utc - timedelta(days=1), utc + timedelta(days=1)
    except OverflowError:
        raise field_error(location, "timestamp out of range") from None
    return utc


def window(since: datetime | None, until: datetime | None) -> tuple[str | None, dict[str, Any]]:
    """A sort-key condition for time-prefixed sort keys (`<iso time>...`), newest-first friendly."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise field_error(f"query.{name}", "timestamp must carry a timezone, e.g. 2026-01-05T14:30:00Z")
        if value is not None:
            representable(f"query.{name}", value)
    if since is not None and until is not None and since >= until:
        raise field_error("query.until", "must be after since")
    if since is not None and until is not None:
        return "#sk BETWEEN :since AND :until", {":since": iso(since), ":until": iso(until)}
    if since is not None:
        return "#sk >= :since", {":since": iso(since)}
    if until is not None:
        return "#sk < :until", {":until": iso(until)}
    return None, {}
