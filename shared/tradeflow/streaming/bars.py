"""Turning a stream's 1-minute bars into closed bars of every timeframe the deployments read.

Brokers stream 1-minute bars in two styles: Alpaca sends each minute's bar once, shortly after the
minute ended; ccxt's `watch_ohlcv` sends the *forming* bar again and again while its minute runs (each
time with the OHLCV so far). The strategy function must only ever read complete bars, so this
aggregator holds each symbol's forming bar (the last version received wins) and emits it once it is
closed: a bar of a later minute arrived for that symbol, or the clock passed the minute's end plus a
small grace (late final updates of a forming bar still count).

Closed 1-minute bars are rolled up into the higher timeframes (5m, 15m, 1h, ...; buckets aligned to the
epoch, weeks to Monday, months to the calendar) with exact Decimal OHLCV: open of the first minute,
high/low over all, close of the last, volume summed. A bucket is emitted when its last minute closed,
when a minute of a later bucket closed (minutes without trades send no bar: gaps are normal), or when
the clock passed its end plus the grace. A bucket whose beginning this process did not see (it started
streaming in the middle of it) would carry a wrong open and volume, so it is dropped, never written.

Everything here is pure: no I/O, the caller passes the clock's "now". Keys are opaque strings (the
streamer uses one per tenant and broker, so two exchanges' prices never mix).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tradeflow.domain import Bar
from tradeflow.domain.timeframes import duration

log = logging.getLogger("tradeflow.streaming")

BASE_TIMEFRAME = "1m"
MINUTE = timedelta(minutes=1)
DEFAULT_GRACE = timedelta(seconds=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # weeks start on Monday, not on the epoch's Thursday

# (key, symbol) -> the timeframes the deployments read for it ("1m" included when they read 1m bars)
TimeframesFor = Callable[[str, str], Iterable[str]]


class NotOneMinute(ValueError):
    """A stream delivered a bar of another timeframe than 1m (the aggregator's only input)."""


def bucket_start(ts: datetime, timeframe: str) -> datetime:
    """The open time of the `timeframe` bar that contains the instant `ts`."""
    ts = ts.astimezone(UTC)
    if timeframe == "1mo":
        return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    origin = _MONDAY if timeframe == "1w" else _EPOCH
    step = duration(timeframe)
    return origin + ((ts - origin) // step) * step


def bucket_end(start: datetime, timeframe: str) -> datetime:
    if timeframe == "1mo":
        return (start + timedelta(days=32)).replace(day=1)
    return start + duration(timeframe)


@dataclass(frozen=True)
class ClosedBar:
    """A complete bar, ready to be written under `key`."""

    key: str
    bar: Bar


@dataclass
class _Bucket:
    bar: Bar  # the running aggregate, stamped with the bucket's open time and timeframe
    end: datetime
    partial: bool  # the process joined after the bucket began: never emitted

    def merge(self, minute: Bar) -> None:
        self.bar = self.bar.model_copy(
            update={
                "high": max(self.bar.high, minute.high),
                "low": min(self.bar.low, minute.low),
                "close": minute.close,
                "volume": self.bar.volume + minute.volume,
            }
        )


@dataclass
class _Series:
    """One symbol of one key: its forming minute, the last closed minute, and the open buckets."""

    forming: Bar | None = None
    closed_until: datetime | None = None  # minutes at or before this one are closed
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    # per timeframe, the first closed minute rolled into it: a bucket that began earlier is partial
    since: dict[str, datetime] = field(default_factory=dict)


class BarAggregator:
    def __init__(self, timeframes_for: TimeframesFor, grace: timedelta = DEFAULT_GRACE) -> None:
        self.timeframes_for = timeframes_for
        self.grace = grace
        self._series: dict[tuple[str, str], _Series] = {}
        self.late = 0  # bars for minutes already closed (dropped)
        self.partial = 0  # buckets dropped because streaming began in their middle

    def add(self, key: str, bar: Bar) -> list[ClosedBar]:
        """Take one (possibly forming, possibly repeated) 1-minute bar; returns what it closed."""
        if bar.timeframe != BASE_TIMEFRAME:
            raise NotOneMinute(f"expected {BASE_TIMEFRAME} bars, got {bar.timeframe} for {bar.symbol}")
        series = self._series.setdefault((key, bar.symbol), _Series())
        newest = series.forming.ts if series.forming is not None else series.closed_until
        if newest is not None and (bar.ts < newest or (bar.ts == newest and series.forming is None)):
            # a minute already closed (or older than the forming one): its bar was written, or skipped
            self.late += 1
            log.debug("late bar of %s at %s dropped (newest minute %s)", bar.symbol, bar.ts, newest)
            return []
        closed: list[ClosedBar] = []
        if series.forming is not None and bar.ts > series.forming.ts:
            closed += self._close_minute(key, series)
        series.forming = bar  # the last version of a forming bar wins
        return closed

    def due(self, now: datetime) -> list[ClosedBar]:
        """Everything the clock has closed by `now`: forming minutes, then buckets, past end + grace."""
        closed: list[ClosedBar] = []
        for (key, _symbol), series in self._series.items():
            if series.forming is not None and series.forming.ts + MINUTE + self.grace <= now:
                closed += self._close_minute(key, series)
            for timeframe, bucket in list(series.buckets.items()):
                if bucket.end + self.grace <= now:
                    closed += self._emit_bucket(key, series, timeframe)
        return closed

    def _close_minute(self, key: str, series: _Series) -> list[ClosedBar]:
        minute = series.forming
        assert minute is not None
        series.forming = None
        series.closed_until = minute.ts
        timeframes = set(self.timeframes_for(key, minute.symbol))
        closed = [ClosedBar(key, minute)] if BASE_TIMEFRAME in timeframes else []
        for dropped in set(series.since) - timeframes:
            # no deployment reads it any more: if one does again, its buckets start afresh
            series.since.pop(dropped)
            series.buckets.pop(dropped, None)
        for timeframe in sorted(timeframes - {BASE_TIMEFRAME}, key=duration):
            closed += self._roll_up(key, series, timeframe, minute)
        return closed

    def _roll_up(self, key: str, series: _Series, timeframe: str, minute: Bar) -> list[ClosedBar]:
        buckets = series.buckets
        since = series.since.setdefault(timeframe, minute.ts)
        start = bucket_start(minute.ts, timeframe)
        closed: list[ClosedBar] = []
        current = buckets.get(timeframe)
        if current is not None and current.bar.ts != start:
            closed += self._emit_bucket(key, series, timeframe)  # a gap ran past its end
            current = None
        if current is None:
            current = _Bucket(
                bar=minute.model_copy(update={"timeframe": timeframe, "ts": start, "source_ts": None}),
                end=bucket_end(start, timeframe),
                partial=start < since,
            )
            buckets[timeframe] = current
        else:
            current.merge(minute)
        if minute.ts + MINUTE >= current.end:
            closed += self._emit_bucket(key, series, timeframe)
        return closed

    def _emit_bucket(self, key: str, series: _Series, timeframe: str) -> list[ClosedBar]:
        bucket = series.buckets.pop(timeframe)
        if bucket.partial:
            self.partial += 1
            log.info(
                "dropped the partial %s bar of %s at %s: its minutes were followed only from %s",
                timeframe,
                bucket.bar.symbol,
                bucket.bar.ts,
                series.since.get(timeframe),
            )
            return []
        return [ClosedBar(key, bucket.bar)]
