"""The Parquet archiver: tenants' bars -> Parquet objects in the history bucket, queryable with Athena.

One object per (tenant, symbol, timeframe, UTC day) in each batch, at the Hive-partitioned key of
`tradeflow.marketdata.history.object_key`. The key is derived from the first and last bar it holds, so a
redelivered batch overwrites the same object: exactly once in effect. (A batch that Lambda splits after an
error can be regrouped differently; its objects then overlap earlier ones by whole bars, which a query
removes with `DISTINCT` — never a lost bar.)

pyarrow is imported here and only here (design rule 9: strategy, risk and execution never reach it); it is
the standard Parquet implementation and ships in the `parquet` layer of the archiver function alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tradeflow.catalogue import bucket_name
from tradeflow.domain import Bar
from tradeflow.marketdata.history import BAR_COLUMNS, DATE_FORMAT, ColumnType, object_key
from tradeflow.runtime.aws import client

_ARROW_TYPES: dict[ColumnType, Any] = {"timestamp": pa.timestamp("us", tz="UTC"), "double": pa.float64()}
SCHEMA = pa.schema([pa.field(name, _ARROW_TYPES[kind], nullable=name == "source_ts") for name, kind in BAR_COLUMNS])
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    rows: int


def bars_table(bars: Sequence[Bar]) -> Any:
    """The bars as an Arrow table of `SCHEMA` (times in UTC, prices and volume as float64)."""
    columns: dict[str, list[Any]] = {
        "ts": [b.ts.astimezone(UTC) for b in bars],
        "open": [float(b.open) for b in bars],
        "high": [float(b.high) for b in bars],
        "low": [float(b.low) for b in bars],
        "close": [float(b.close) for b in bars],
        "volume": [float(b.volume) for b in bars],
        "source_ts": [b.source_ts.astimezone(UTC) if b.source_ts else None for b in bars],
    }
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def parquet_bytes(bars: Sequence[Bar]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(bars_table(bars), sink, compression="snappy")
    data: bytes = sink.getvalue().to_pybytes()
    return data


def read_bars(data: bytes) -> Any:
    """An archived object back as an Arrow table (tests, tools)."""
    return pq.read_table(pa.BufferReader(data))


def _groups(bars: Iterable[Bar]) -> dict[tuple[str, str, str], list[Bar]]:
    """Bars by (symbol, timeframe, UTC day), each group ordered by open time, one bar per open time (a bar
    delivered twice in one batch is written once, the later image winning)."""
    grouped: dict[tuple[str, str, str], dict[datetime, Bar]] = defaultdict(dict)
    for bar in bars:
        grouped[(bar.symbol, bar.timeframe, bar.ts.astimezone(UTC).strftime(DATE_FORMAT))][bar.ts] = bar
    return {key: [by_ts[ts] for ts in sorted(by_ts)] for key, by_ts in grouped.items()}


class BarArchive:
    """Writes tenants' bars to the history bucket (`TRADEFLOW_HISTORY_BUCKET`, set by CDK; the catalogue's
    name locally)."""

    def __init__(self, bucket: str | None = None) -> None:
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket or bucket_name("history")

    def write(self, tenant_id: str, bars: Iterable[Bar]) -> list[ArchivedObject]:
        """Put one Parquet object per symbol, timeframe and day of `bars` (all of one tenant)."""
        written: list[ArchivedObject] = []
        for (symbol, timeframe, _day), group in sorted(_groups(bars).items()):
            key = object_key(tenant_id, symbol, timeframe, group[0].ts.astimezone(UTC), group[-1].ts.astimezone(UTC))
            client("s3").put_object(
                Bucket=self.bucket, Key=key, Body=parquet_bytes(group), ContentType=PARQUET_CONTENT_TYPE
            )
            written.append(ArchivedObject(key, len(group)))
        return written
