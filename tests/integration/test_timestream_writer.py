"""The optional Timestream writer on moto (timestream-write): bars from the `bars` stream become multi-measure
records with the tenant, symbol and timeframe dimensions, in requests of at most 100; a record outside the
memory store is logged and skipped, any other rejection fails the batch for Lambda to retry."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_bars_archive import bars, stream_records

from tradeflow.catalogue import TIMESTREAM
from tradeflow.local.provision import provision
from tradeflow.marketdata import timestream
from tradeflow.marketdata.stream_bars import TenantBar
from tradeflow.marketdata.timestream import TimestreamRejected, TimestreamWriter
from tradeflow.storage.bars import BarRepository

from helpers import Context, handler, receive

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def stored_records() -> list[dict[str, Any]]:
    """What moto's Timestream table holds (moto keeps the written records as they were sent)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.timestreamwrite.models import timestreamwrite_backends

    # moto runs in this process (ThreadedMotoServer): read its backend directly, as `query` runs no SQL
    backend = timestreamwrite_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    table = backend.databases[TIMESTREAM.database_name()].tables[TIMESTREAM.table]
    return list(table.records)


@pytest.fixture
def timestream_aws(aws: object) -> object:
    provision(flags={"timestream"})
    return aws


def test_bars_become_multi_measure_records_with_their_dimensions(timestream_aws: object) -> None:
    BarRepository().put_many("acme", bars("GOOG", 2, start=NOW))
    BarRepository().put_many("beta", bars("BTC/USDT", 1, start=NOW, base="7"))
    assert handler("timestream_writer")({"Records": stream_records()}, Context()) == {"batchItemFailures": []}
    records = stored_records()
    assert len(records) == 3
    by_dims = {
        tuple(d["Value"] for d in r["Dimensions"]): r for r in records if r["Time"] == str(int(NOW.timestamp() * 1000))
    }
    assert set(by_dims) == {("acme", "GOOG", "1m"), ("beta", "BTC/USDT", "1m")}
    goog = by_dims[("acme", "GOOG", "1m")]
    assert [d["Name"] for d in goog["Dimensions"]] == ["tenant", "symbol", "timeframe"]
    assert goog["MeasureName"] == "bar" and goog["MeasureValueType"] == "MULTI" and goog["TimeUnit"] == "MILLISECONDS"
    assert {m["Name"]: (float(m["Value"]), m["Type"]) for m in goog["MeasureValues"]} == {
        "open": (100.0, "DOUBLE"),
        "high": (100.5, "DOUBLE"),
        "low": (99.75, "DOUBLE"),
        "close": (100.125, "DOUBLE"),
        "volume": (1000.0, "DOUBLE"),
    }


def test_an_invalid_bar_is_dead_lettered_with_its_reason(timestream_aws: object) -> None:
    BarRepository().put_many("acme", bars("GOOG", 1, start=NOW))
    (record,) = stream_records()
    poison = copy.deepcopy(record)
    poison["dynamodb"]["NewImage"]["low"] = {"S": "-1"}
    assert handler("timestream_writer")({"Records": [poison, record]}, Context()) == {"batchItemFailures": []}
    (dead,) = receive("dead_events")
    assert "low" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert len(stored_records()) == 1


class RejectingClient:
    """A timestream-write client that rejects chosen record indexes with chosen reasons."""

    def __init__(self, rejections: dict[int, str]) -> None:
        self.rejections = rejections
        self.requests: list[int] = []

    def write_records(self, **request: Any) -> dict[str, Any]:
        self.requests.append(len(request["Records"]))
        rejected = [{"RecordIndex": i, "Reason": r} for i, r in self.rejections.items() if i < len(request["Records"])]
        if rejected:
            error = {"Error": {"Code": "RejectedRecordsException", "Message": "rejected"}, "RejectedRecords": rejected}
            raise ClientError(error, "WriteRecords")  # type: ignore[arg-type]
        return {}


def _bars(count: int) -> list[TenantBar]:
    return [TenantBar("acme", b) for b in bars("GOOG", count, start=NOW)]


def test_requests_carry_at_most_100_records(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RejectingClient({})
    monkeypatch.setattr(timestream, "client", lambda service: fake)
    outcome = TimestreamWriter("db", "table").write(_bars(250))
    assert fake.requests == [100, 100, 50] and outcome.written == 250


def test_a_record_older_than_the_memory_store_is_skipped_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = (
        "The record timestamp is outside the time range [2026-01-05T13:00:00Z, 2026-01-06T14:15:00Z) of the "
        "memory store."
    )
    fake = RejectingClient({1: reason})
    monkeypatch.setattr(timestream, "client", lambda service: fake)
    outcome = TimestreamWriter("db", "table").write(_bars(3))
    assert outcome.written == 2
    assert [(s.tenant_id, s.symbol, s.reason) for s in outcome.skipped] == [("acme", "GOOG", reason)]


def test_any_other_rejection_fails_the_batch_for_a_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RejectingClient({0: "A record with the same dimensions and time already exists with a different value."})
    monkeypatch.setattr(timestream, "client", lambda service: fake)
    with pytest.raises(TimestreamRejected, match="different value"):
        TimestreamWriter("db", "table").write(_bars(2))


def test_measure_values_are_exact_decimal_renderings() -> None:
    (item,) = _bars(1)
    record = timestream.to_record(TenantBar("acme", item.bar.model_copy(update={"close": Decimal("0.1")})))
    assert {m["Name"]: m["Value"] for m in record["MeasureValues"]}["close"] == "0.1"
