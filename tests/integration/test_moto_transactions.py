"""The local cloud's moto keeps DynamoDB's all-or-nothing transactions with its per-item rollback."""

from __future__ import annotations

import pytest

from tradeflow.storage.dynamo import DynamoTable, TransactionConflict, Write, transact


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws: object) -> None:
    table = DynamoTable("controls")
    table.put({"pk": "t", "sk": "b", "value": "before"})
    table.put({"pk": "t", "sk": "c", "value": "guard"})
    other = DynamoTable("audit")
    other.put({"pk": "t", "sk": "keep", "value": "untouched"})

    with pytest.raises(TransactionConflict) as cancelled:
        transact(
            [
                Write("controls", "Put", item={"pk": "t", "sk": "a", "value": "new"}),
                Write(
                    "controls",
                    "Update",
                    key={"pk": "t", "sk": "b"},
                    update="SET #v = :v",
                    names={"#v": "value"},
                    values={":v": "after"},
                ),
                Write("audit", "Put", item={"pk": "t", "sk": "x", "value": "new"}),
                Write(
                    "controls",
                    "ConditionCheck",
                    key={"pk": "t", "sk": "c"},
                    condition="#v = :expected",
                    names={"#v": "value"},
                    values={":expected": "something else"},
                ),
            ]
        )
    assert cancelled.value.reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert table.get({"pk": "t", "sk": "a"}) is None
    assert table.get({"pk": "t", "sk": "b"}) == {"pk": "t", "sk": "b", "value": "before"}
    assert other.get({"pk": "t", "sk": "x"}) is None
    assert other.get({"pk": "t", "sk": "keep"}) == {"pk": "t", "sk": "keep", "value": "untouched"}


def test_a_committed_transaction_applies_every_write(aws: object) -> None:
    table = DynamoTable("controls")
    transact(
        [
            Write("controls", "Put", item={"pk": "t", "sk": "a", "value": "1"}),
            Write("controls", "Put", item={"pk": "t", "sk": "b", "value": "2"}, condition="attribute_not_exists(pk)"),
        ]
    )
    assert [i["value"] for i in table.query("t")] == ["1", "2"]
