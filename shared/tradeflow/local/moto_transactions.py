"""Cheaper DynamoDB transactions in moto's server.

moto makes TransactWriteItems all-or-nothing by deep-copying every table the transaction touches
before it starts and restoring the copies if it is cancelled. That costs time proportional to the
tables' size on every transaction, so a long local run slows down as its journal, ledger and audit
trail grow. The local cloud serialises DynamoDB requests (see `moto_server`), so remembering and
restoring just the items the transaction touches gives the same all-or-nothing result: this module
replaces the whole-table copy with that.
"""

from __future__ import annotations

import copy
from typing import Any


class _KeepTables:
    """Stands in for the `copy` module inside moto's DynamoDB models: tables are "copied" as
    themselves (we restore items instead); everything else is really copied."""

    def __init__(self, table_type: type) -> None:
        self.table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self.table_type):
            return value
        return copy.deepcopy(value, memo)

    def copy(self, value: Any) -> Any:
        return copy.copy(value)


def install() -> None:
    from moto.dynamodb import models

    if getattr(models.DynamoDBBackend.transact_write_items, "_tradeflow", False):
        return
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            source = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not source or table.hash_key_attr not in source:
                continue
            hash_key = DynamoType(source[table.hash_key_attr])
            range_key = None
            if table.range_key_attr:
                if table.range_key_attr not in source:
                    continue
                range_key = DynamoType(source[table.range_key_attr])
            current = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(current) if current else None))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if range_key is not None:
                    if item is None:
                        table.items[hash_key].pop(range_key, None)
                    else:
                        table.items[hash_key][range_key] = item
                elif item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
            raise

    setattr(models, "copy", _KeepTables(Table))  # noqa: B010  (replacing a module global)
    transact_write_items._tradeflow = True  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
