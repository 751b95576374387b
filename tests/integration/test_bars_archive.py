"""The bars archiver on moto: bars written to the `bars` table reach the history bucket as Parquet at their
Hive-partitioned keys (tenant first), read back equal; a redelivered batch rewrites the same objects; an
invalid bar is dead-lettered with its reason while the rest of its batch is archived."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradeflow.catalogue import TABLES, bucket_name
from tradeflow.domain import Bar
from tradeflow.marketdata.archive import read_bars
from tradeflow.runtime.aws import client
from tradeflow.storage.bars import BarRepository

from helpers import Context, handler, receive

T0 = datetime(2026, 1, 5, 23, 58, tzinfo=UTC)


def bars(symbol: str, count: int, start: datetime = T0, base: str = "100") -> list[Bar]:
    out = []
    for i in range(count):
        price = Decimal(base) + i
        out.append(
            Bar(
                symbol=symbol,
                timeframe="1m",
                ts=start + timedelta(minutes=i),
                open=price,
                high=price + Decimal("0.5"),
                low=price - Decimal("0.25"),
                close=price + Decimal("0.125"),
                volume=Decimal(1000 + i),
                source_ts=datetime(2004, 11, 19, tzinfo=UTC) + timedelta(days=i),
            )
        )
    return out


def stream_records() -> list[dict[str, Any]]:
    """Everything moto's `bars` stream holds, oldest first, shaped like a Lambda stream event's records."""
    streams, out = client("dynamodbstreams"), []
    arn = client("dynamodb").describe_table(TableName=TABLES["bars"].physical_name())["Table"]["LatestStreamArn"]
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        for record in streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]:
            record["eventSourceARN"] = arn
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if isinstance(created, datetime):
                record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
            out.append(record)
    return out


def objects() -> dict[str, bytes]:
    s3, bucket = client("s3"), bucket_name("history")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def archive(records: list[dict[str, Any]]) -> Any:
    return handler("bars_archiver")({"Records": records}, Context())


def test_bars_become_parquet_objects_at_their_partitioned_keys_and_read_back_equal(aws: object) -> None:
    written = bars("GOOG", 4)  # 23:58 .. 00:01: two UTC days
    BarRepository().put_many("acme", written)
    assert archive(stream_records()) == {"batchItemFailures": []}
    found = objects()
    assert sorted(found) == [
        "bars/tenant=acme/symbol=GOOG/timeframe=1m/date=2026-01-05/"
        "20260105T235800000000Z_20260105T235900000000Z.parquet",
        "bars/tenant=acme/symbol=GOOG/timeframe=1m/date=2026-01-06/"
        "20260106T000000000000Z_20260106T000100000000Z.parquet",
    ]
    rows = [row for key in sorted(found) for row in read_bars(found[key]).to_pylist()]
    assert [
        Bar(
            symbol="GOOG",
            timeframe="1m",
            **{k: v for k, v in row.items() if k not in ("volume",)},
            volume=row["volume"],
        )
        for row in rows
    ] == written
    table = read_bars(next(iter(found.values())))
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("close").type) == "double"


def test_a_redelivered_batch_rewrites_the_same_objects(aws: object) -> None:
    BarRepository().put_many("acme", bars("GOOG", 3, start=datetime(2026, 1, 5, 14, 30, tzinfo=UTC)))
    records = stream_records()
    archive(records)
    first = objects()
    archive(copy.deepcopy(records))
    assert objects().keys() == first.keys() and len(first) == 1
    assert read_bars(next(iter(objects().values()))).num_rows == 3


def test_tenants_are_separate_prefixes_and_crypto_symbols_are_encoded(aws: object) -> None:
    BarRepository().put_many("acme", bars("BTC/USDT", 1, start=datetime(2026, 1, 5, 14, 30, tzinfo=UTC)))
    BarRepository().put_many("beta", bars("BTC/USDT", 1, start=datetime(2026, 1, 5, 14, 30, tzinfo=UTC), base="7"))
    archive(stream_records())
    keys = sorted(objects())
    assert [k.split("/")[1:3] for k in keys] == [
        ["tenant=acme", "symbol=BTC%2FUSDT"],
        ["tenant=beta", "symbol=BTC%2FUSDT"],
    ]
    closes = {k.split("/")[1]: read_bars(v).column("close").to_pylist() for k, v in objects().items()}
    assert closes == {"tenant=acme": [100.125], "tenant=beta": [7.125]}


def test_an_invalid_bar_is_dead_lettered_with_its_reason_and_the_rest_archived(aws: object) -> None:
    BarRepository().put_many("acme", bars("GOOG", 2, start=datetime(2026, 1, 5, 14, 30, tzinfo=UTC)))
    records = stream_records()
    poison = copy.deepcopy(records[0])
    poison["eventID"] = "poison-1"
    poison["dynamodb"]["NewImage"]["high"] = {"S": "1"}  # below open and close
    no_tenant = copy.deepcopy(records[1])
    no_tenant["eventID"] = "poison-2"
    del no_tenant["dynamodb"]["NewImage"]["tenant_id"]
    assert archive([poison, no_tenant, *records]) == {"batchItemFailures": []}
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in receive("dead_events"))
    assert len(reasons) == 2
    assert "high/low do not bound open/close" in reasons[0] and "tenant_id" in reasons[1]
    assert len(objects()) == 1 and read_bars(next(iter(objects().values()))).num_rows == 2


def test_removed_and_rewritten_bars_are_not_new_history(aws: object) -> None:
    BarRepository().put_many("acme", bars("GOOG", 1, start=datetime(2026, 1, 5, 14, 30, tzinfo=UTC)))
    (insert,) = stream_records()
    modify = copy.deepcopy(insert) | {"eventName": "MODIFY"}
    remove = copy.deepcopy(insert) | {"eventName": "REMOVE"}
    assert archive([modify, remove]) == {"batchItemFailures": []}
    assert objects() == {}
