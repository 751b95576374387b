"""Filtered pages that are full: DynamoDB applies `Limit` before a filter, so a plain filtered query
can return a short (even empty) page with more to come. `filled_page` keeps reading until it has
`limit` matching items, the partition ends, or `max_reads` reads were spent (then the page is short
but the continuation key is still right)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeflow.storage.dynamo import DynamoTable

READ_BATCH = 100  # items examined per read when a filter may discard most of them


def filled_page(
    table: DynamoTable,
    partition: str,
    *,
    limit: int,
    start: Mapping[str, Any] | None = None,
    sk_condition: str | None = None,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    filter_expression: str | None = None,
    forward: bool = True,
    max_reads: int = 10,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to `limit` items of the base table's `partition` from `start`, and the key to continue from
    (None at the end)."""
    key_names = [n for n in (table.spec.partition_key, table.spec.sort_key) if n]
    found: list[dict[str, Any]] = []
    key = dict(start) if start else None
    for _ in range(max_reads):
        wanted = limit - len(found)
        items, last = table.page(
            partition,
            limit=max(wanted, READ_BATCH) if filter_expression else wanted,
            start=key,
            sk_condition=sk_condition,
            values=values,
            names=names,
            filter_expression=filter_expression,
            forward=forward,
        )
        for index, item in enumerate(items):
            found.append(item)
            if len(found) == limit:
                if last is None and index == len(items) - 1:
                    return found, None
                return found, {k: item[k] for k in key_names}
        if last is None:
            return found, None
        key = last
    return found, key
