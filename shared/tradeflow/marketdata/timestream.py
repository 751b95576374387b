"""The optional Timestream writer: tenants' bars -> Amazon Timestream for LiveAnalytics.

Why optional: Timestream for LiveAnalytics has been closed to new AWS customers since 2025-06-20 (AWS points
new users to Timestream for InfluxDB), so tradeflow never depends on it. Market data lives in DynamoDB
(`bars`, recent, with TTL) and in the history bucket as Parquet (Athena); accounts that already use
LiveAnalytics can add this writer with the `timestream` context flag (`-c timestream=true`), which deploys
the database, the table and the `timestream_writer` function.

Each bar is one multi-measure record `bar` (open, high, low, close, volume as DOUBLE) with the dimensions
tenant, symbol and timeframe, at the bar's open time in milliseconds. Records are written in requests of at
most `MAX_RECORDS` (the WriteRecords limit). Rewriting a bar with the same values is accepted by Timestream
(idempotent), so a redelivered stream batch is harmless. Rejected records: one older than the table's
memory-store retention (e.g. a late replayed bar) can never be written: it is logged with its reason and
skipped; any other rejection fails the call (`TimestreamRejected`) so Lambda retries the batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tradeflow.catalogue import TIMESTREAM
from tradeflow.marketdata.stream_bars import TenantBar
from tradeflow.runtime.aws import client

log = logging.getLogger("tradeflow.timestream")
MAX_RECORDS = 100  # WriteRecords takes at most 100 records per request
MEASURE = "bar"
# How Timestream words a record outside the memory store's time range (older than its retention, or too far
# in the future); such a record is never accepted by this table, so it is skipped, not retried.
OUT_OF_RANGE_MARKERS = ("memory store", "retention", "time range")


class TimestreamRejected(RuntimeError):
    """Timestream rejected records for a reason a retry can fix; the message lists the reasons."""


@dataclass(frozen=True)
class Rejection:
    tenant_id: str
    symbol: str
    ts: str
    reason: str


@dataclass
class WriteOutcome:
    written: int = 0
    skipped: list[Rejection] = field(default_factory=list)  # too old for the memory store


def to_record(item: TenantBar) -> dict[str, Any]:
    bar = item.bar
    return {
        "Dimensions": [
            {"Name": "tenant", "Value": item.tenant_id},
            {"Name": "symbol", "Value": bar.symbol},
            {"Name": "timeframe", "Value": bar.timeframe},
        ],
        "MeasureName": MEASURE,
        "MeasureValueType": "MULTI",
        "MeasureValues": [
            {"Name": name, "Value": repr(float(getattr(bar, name))), "Type": "DOUBLE"}
            for name in ("open", "high", "low", "close", "volume")
        ],
        "Time": str(int(bar.ts.timestamp() * 1000)),
        "TimeUnit": "MILLISECONDS",
    }


def _chunks(items: Sequence[TenantBar], size: int) -> Iterable[Sequence[TenantBar]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _out_of_range(reason: str) -> bool:
    lowered = reason.lower()
    return any(marker in lowered for marker in OUT_OF_RANGE_MARKERS)


class TimestreamWriter:
    """Writes bars to the Timestream table named by `TRADEFLOW_TIMESTREAM_DATABASE` / `_TABLE` (set by CDK;
    the catalogue's names otherwise)."""

    def __init__(self, database: str | None = None, table: str | None = None) -> None:
        self._database = database
        self._table = table

    @property
    def database(self) -> str:
        return self._database or os.environ.get(TIMESTREAM.database_env_var) or TIMESTREAM.database_name()

    @property
    def table(self) -> str:
        return self._table or os.environ.get(TIMESTREAM.table_env_var) or TIMESTREAM.table

    def write(self, items: Sequence[TenantBar]) -> WriteOutcome:
        outcome = WriteOutcome()
        retryable: list[str] = []
        for chunk in _chunks(items, MAX_RECORDS):
            try:
                client("timestream-write").write_records(
                    DatabaseName=self.database, TableName=self.table, Records=[to_record(i) for i in chunk]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "RejectedRecordsException":
                    raise
                # the records not listed were written (WriteRecords rejects record by record)
                rejected = exc.response.get("RejectedRecords", [])
                outcome.written += len(chunk) - len(rejected)
                for entry in rejected:
                    item = chunk[int(entry["RecordIndex"])]
                    reason = str(entry.get("Reason", "rejected"))
                    rejection = Rejection(item.tenant_id, item.bar.symbol, item.bar.ts.isoformat(), reason)
                    if _out_of_range(reason):
                        outcome.skipped.append(rejection)
                        log.warning("timestream skipped a bar outside the memory store: %s", rejection)
                    else:
                        retryable.append(f"{rejection.tenant_id} {rejection.symbol} {rejection.ts}: {reason}")
                continue
            outcome.written += len(chunk)
        if retryable:
            raise TimestreamRejected("; ".join(retryable))
        return outcome
