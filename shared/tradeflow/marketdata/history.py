"""The market-data history layout in S3: one definition for the archiver that writes it and the Athena
(Glue) table that reads it.

Bars are archived as Parquet under the history bucket, Hive-partitioned with the tenant first
(design rule 5):

    s3://<bucket>/bars/tenant=<t>/symbol=<s>/timeframe=<tf>/date=<YYYY-MM-DD>/<first>_<last>.parquet

`<first>` and `<last>` are the compact open times of the first and last bar in the object, so a redelivered
stream batch rewrites the same object instead of adding a duplicate. Partition values are percent-encoded
(`quote(value, safe="")`): crypto symbols carry a `/` (`BTC/USDT` is stored as `symbol=BTC%2FUSDT`, and
Athena queries name it that way), every other allowed symbol character is kept as it is.

The columns are plain data (no pyarrow here): the CDK app builds the Glue table from `BAR_COLUMNS` without
importing pyarrow, and `tradeflow.marketdata.archive` maps the same list onto its Arrow schema. Prices and
volume are `double`: bars are analytics input (vectorised, float, design rule 7), Athena aggregates doubles
natively, and a fixed decimal scale would either truncate crypto prices or bloat every row; exact money
lives in the ledger, never here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from tradeflow.catalogue import PREFIX, stage
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS

BARS_PREFIX = "bars/"
BARS_TABLE = "bars"  # the Glue/Athena table over BARS_PREFIX
ATHENA_RESULTS_PREFIX = "athena-results/"
PARTITION_KEYS: tuple[str, ...] = ("tenant", "symbol", "timeframe", "date")
DATE_FORMAT = "%Y-%m-%d"  # the `date` partition (UTC day of the bar's open time)
ATHENA_DATE_FORMAT = "yyyy-MM-dd"  # the same format in partition projection's (Java) notation
PROJECTION_FIRST_DATE = "2000-01-01"  # the earliest `date` Athena projects (history reaches back to 2004)

ColumnType = Literal["timestamp", "double"]
BAR_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("ts", "timestamp"),  # the bar's open time, UTC, microseconds
    ("open", "double"),
    ("high", "double"),
    ("low", "double"),
    ("close", "double"),
    ("volume", "double"),
    ("source_ts", "timestamp"),  # the recorded time of a replayed historical bar (null for live bars)
)
TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAME_SECONDS)  # the `timeframe` partition's enum


def glue_database(stage_name: str | None = None) -> str:
    """The stage's Glue/Athena database: `tradeflow_<stage>` (Athena names take no hyphens)."""
    return f"{PREFIX}_{stage_name or stage()}".replace("-", "_")


def athena_workgroup(stage_name: str | None = None) -> str:
    return f"{PREFIX}-{stage_name or stage()}-history"


def partition_value(value: str) -> str:
    """A partition value as it appears in a key (`/` and other reserved characters percent-encoded)."""
    return quote(value, safe="")


def compact_time(value: datetime) -> str:
    """`20260105T143200000000Z`: sortable, and free of the `:` that tools handle badly in S3 keys."""
    return value.strftime("%Y%m%dT%H%M%S%fZ")


def partition_prefix(tenant_id: str, symbol: str, timeframe: str, day: str) -> str:
    parts = zip(PARTITION_KEYS, (tenant_id, symbol, timeframe, day), strict=True)
    return BARS_PREFIX + "".join(f"{key}={partition_value(value)}/" for key, value in parts)


def object_key(tenant_id: str, symbol: str, timeframe: str, first: datetime, last: datetime) -> str:
    """The object holding one tenant's bars of one symbol/timeframe/day, from `first` to `last` (open times)."""
    day = first.strftime(DATE_FORMAT)
    return f"{partition_prefix(tenant_id, symbol, timeframe, day)}{compact_time(first)}_{compact_time(last)}.parquet"
