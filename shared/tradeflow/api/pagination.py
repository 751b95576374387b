"""Cursor pagination for list endpoints.

A page is `{"items": [...], "next_cursor": "..." | null}`; pass `cursor` back to get the next one. The
cursor is the store's continuation key, base64url-encoded; it is opaque to clients, and a cursor whose
partition is not the caller's (tampered, or another tenant's) is refused as an invalid `cursor` — the
tenant wall holds even for hand-made cursors.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from tradeflow.api.errors import field_error
from tradeflow.catalogue import TABLES
from tradeflow.storage.dynamo import DynamoTable

T = TypeVar("T")

# every key attribute of every table and index: a continuation key holds nothing else
_KEY_ATTRIBUTES = frozenset(a for table in TABLES.values() for a in table.key_attributes)

Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page; null at the end")


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, partition_attribute: str, partition: str) -> dict[str, Any] | None:
    """The continuation key in `cursor`, checked to belong to `partition`."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise field_error("query.cursor", "not a cursor this API issued") from exc
    if (
        not isinstance(key, dict)
        or key.get(partition_attribute) != partition
        or len(key) > 4
        or not set(key) <= _KEY_ATTRIBUTES
        or not all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in key.values())
    ):
        raise field_error("query.cursor", "not a cursor this API issued")
    return key


def query_page(
    table: DynamoTable,
    partition: str,
    parse: Callable[[dict[str, Any]], T],
    *,
    limit: int,
    cursor: str | None,
    partition_attribute: str = "pk",
    **query: Any,
) -> Page[T]:
    """One page of `table`'s items under `partition` (the caller's tenant-led key), parsed by `parse`."""
    start = decode_cursor(cursor, partition_attribute, partition)
    spec, index = table.spec, query.get("index")
    expected = {spec.partition_key, *([spec.sort_key] if spec.sort_key else [])}
    for ix in spec.indexes:
        if ix.name == index:
            expected |= {ix.partition_key, *([ix.sort_key] if ix.sort_key else [])}
    if start is not None and set(start) != expected:  # DynamoDB would refuse it; moto may not
        raise field_error("query.cursor", "not a cursor this API issued")
    items, last = table.page(partition, limit=limit, start=start, **query)
    return Page[T](items=[parse(i) for i in items], next_cursor=encode_cursor(last))
