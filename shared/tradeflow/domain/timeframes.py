"""Bar timeframes. A bar is stamped with its open time and is complete one timeframe later: "the bars
known at `now`" are those with `ts + timeframe <= now` (no look-ahead)."""

from __future__ import annotations

from datetime import datetime, timedelta

TIMEFRAME_SECONDS = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
    "1w": 7 * 86400,
    "1mo": 31 * 86400,  # calendar months vary; this bound is only used for "is it complete / stale"
}


def duration(timeframe: str) -> timedelta:
    try:
        return timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_SECONDS)}") from None


def last_closed_open_time(now: datetime, timeframe: str) -> datetime:
    """The latest open time of a bar that has closed by `now`."""
    return now - duration(timeframe)
