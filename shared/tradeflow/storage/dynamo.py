"""A small typed layer over the DynamoDB client: (de)serialisation, conditional writes, transactions.

Models are stored in their JSON form: decimals as strings (exact, whatever their scale), timestamps
as fixed-width ISO strings (they sort), integers (versions, counters) as numbers so conditions can
compare them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tradeflow.catalogue import TABLES
from tradeflow.runtime.aws import client

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_plain(v)) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ints(_deserializer.deserialize(v)) for k, v in item.items()}


def _ints(value: Any) -> Any:
    # Numbers we store are integers (versions, counters, TTLs); money is stored as strings.
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


class ConditionFailed(Exception):
    """A conditional write found the item in another state than required."""


class TransactionConflict(Exception):
    """A transaction was cancelled; `reasons` holds DynamoDB's cancellation reason codes, in order."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


class InvalidStartKey(ValueError):
    """A page was asked to start from a key that does not fit the table or index (a forged cursor)."""


@dataclass
class Write:
    """One element of a transaction: a put, an update or a condition check."""

    table: str
    kind: str  # Put | Update | ConditionCheck | Delete
    key: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    update: str | None = None
    condition: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": TABLES[self.table].physical_name()}
        if self.kind == "Put":
            assert self.item is not None
            body["Item"] = serialize(self.item)
        else:
            assert self.key is not None
            body["Key"] = serialize(self.key)
        if self.update:
            body["UpdateExpression"] = self.update
        if self.condition:
            body["ConditionExpression"] = self.condition
        if self.names:
            body["ExpressionAttributeNames"] = self.names
        if self.values:
            body["ExpressionAttributeValues"] = serialize(self.values)
        return {self.kind: body}


class DynamoTable:
    """Access to one catalogue table by logical name."""

    def __init__(self, name: str) -> None:
        self.spec = TABLES[name]
        self.name = name

    @property
    def physical(self) -> str:
        return self.spec.physical_name()

    def get(self, key: Mapping[str, Any], consistent: bool = True) -> dict[str, Any] | None:
        out = client("dynamodb").get_item(TableName=self.physical, Key=serialize(key), ConsistentRead=consistent)
        raw = out.get("Item")
        return deserialize(raw) if raw else None

    def put(
        self,
        item: Mapping[str, Any],
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.physical, "Item": serialize(item)}
        _expr(kwargs, condition, names, values)
        self._conditional(client("dynamodb").put_item, kwargs)

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Put unless an item with that key exists; False when it did (idempotent create)."""
        try:
            self.put(item, condition="attribute_not_exists(#pk)", names={"#pk": self.spec.partition_key})
        except ConditionFailed:
            return False
        return True

    def update(
        self,
        key: Mapping[str, Any],
        update: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.physical,
            "Key": serialize(key),
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
        }
        _expr(kwargs, condition, names, values)
        out = self._conditional(client("dynamodb").update_item, kwargs)
        return deserialize(out.get("Attributes", {}))

    def delete(self, key: Mapping[str, Any]) -> None:
        client("dynamodb").delete_item(TableName=self.physical, Key=serialize(key))

    def query(
        self,
        partition: str,
        *,
        index: str | None = None,
        sk_condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        forward: bool = True,
        limit: int | None = None,
        consistent: bool = True,
        filter_expression: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        if index:
            spec = next(i for i in self.spec.indexes if i.name == index)
            pk_name, sk_name = spec.partition_key, spec.sort_key
        else:
            pk_name, sk_name = self.spec.partition_key, self.spec.sort_key
        expr_names = {"#pk": pk_name, **(names or {})}
        if sk_name:
            expr_names["#sk"] = sk_name
        key_expr = "#pk = :pk" + (f" AND {sk_condition}" if sk_condition else "")
        kwargs: dict[str, Any] = {
            "TableName": self.physical,
            "KeyConditionExpression": key_expr,
            "ExpressionAttributeNames": expr_names,
            "ExpressionAttributeValues": serialize({":pk": partition, **(values or {})}),
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = consistent
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if not sk_condition:
            kwargs["ExpressionAttributeNames"].pop("#sk", None)
        found: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(found)
            out = client("dynamodb").query(**kwargs)
            found.extend(deserialize(raw) for raw in out.get("Items", []))
            last = out.get("LastEvaluatedKey")
            if not last or (limit is not None and len(found) >= limit):
                return found[:limit] if limit is not None else found
            kwargs["ExclusiveStartKey"] = last

    def page(
        self,
        partition: str,
        *,
        limit: int,
        start: Mapping[str, Any] | None = None,
        index: str | None = None,
        sk_condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        forward: bool = True,
        filter_expression: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a query: up to `limit` items from `start` (a previous page's last key), and the key
        to continue from (None at the end). With a filter, a page may hold fewer items than `limit`."""
        spec = next((i for i in self.spec.indexes if i.name == index), None) if index else None
        pk_name = spec.partition_key if spec else self.spec.partition_key
        sk_name = spec.sort_key if spec else self.spec.sort_key
        expr_names = {"#pk": pk_name, **(names or {})}
        if sk_condition and sk_name:
            expr_names["#sk"] = sk_name
        kwargs: dict[str, Any] = {
            "TableName": self.physical,
            "KeyConditionExpression": "#pk = :pk" + (f" AND {sk_condition}" if sk_condition else ""),
            "ExpressionAttributeNames": expr_names,
            "ExpressionAttributeValues": serialize({":pk": partition, **(values or {})}),
            "ScanIndexForward": forward,
            "Limit": limit,
        }
        if index:
            kwargs["IndexName"] = index
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        try:
            out = client("dynamodb").query(**kwargs)
        except ClientError as exc:
            if start and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidStartKey(f"the continuation key does not fit {self.spec.name}") from exc
            raise
        last = out.get("LastEvaluatedKey")
        return [deserialize(raw) for raw in out.get("Items", [])], deserialize(last) if last else None

    def scan(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.physical, "ConsistentRead": True}
        while True:
            out = client("dynamodb").scan(**kwargs)
            for raw in out.get("Items", []):
                yield deserialize(raw)
            last = out.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def batch_put(self, items: Sequence[Mapping[str, Any]]) -> None:
        ddb = client("dynamodb")
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
            pending: dict[str, Any] = {self.physical: requests}
            for _ in range(10):
                out = ddb.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"batch write to {self.physical} left unprocessed items")

    @staticmethod
    def _conditional(call: Any, kwargs: dict[str, Any]) -> Any:
        try:
            return call(**kwargs)
        except client("dynamodb").exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed(str(exc)) from exc


def _expr(
    kwargs: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> None:
    if condition:
        kwargs["ConditionExpression"] = condition
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if values:
        kwargs["ExpressionAttributeValues"] = serialize(values)


def transact(writes: Sequence[Write]) -> None:
    """All or nothing. Raises TransactionConflict with per-item reason codes when cancelled."""
    ddb = client("dynamodb")
    try:
        ddb.transact_write_items(TransactItems=[w.request() for w in writes])
    except ddb.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
        raise TransactionConflict(reasons) from exc


def model_item(model: Any, **keys: Any) -> dict[str, Any]:
    """A pydantic model as a stored item, with its key attributes added."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    data.update(keys)
    return data
