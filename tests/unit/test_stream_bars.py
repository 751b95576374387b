"""The streamer's bar aggregator: closing forming 1m bars, and rolling them up into higher timeframes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeflow.domain import Bar
from tradeflow.streaming.bars import BarAggregator, ClosedBar, NotOneMinute, bucket_end, bucket_start

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # a Monday, on a 30-minute boundary
KEY = "acme/alpaca"
GRACE = timedelta(seconds=5)


def minute(
    i: int,
    o: str,
    h: str,
    low: str,
    c: str,
    v: str = "10",
    symbol: str = "AAPL",
    start: datetime = T0,
) -> Bar:
    return Bar(
        symbol=symbol,
        timeframe="1m",
        ts=start + timedelta(minutes=i),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
        volume=Decimal(v),
    )


def flat(i: int, price: str, volume: str = "10", symbol: str = "AAPL", start: datetime = T0) -> Bar:
    return minute(i, price, price, price, price, volume, symbol, start)


def aggregator(*timeframes: str, per_symbol: dict[str, set[str]] | None = None) -> BarAggregator:
    def timeframes_for(key: str, symbol: str) -> Iterable[str]:
        assert key == KEY
        return (per_symbol or {}).get(symbol, set(timeframes))

    return BarAggregator(timeframes_for, GRACE)


def of(closed: list[ClosedBar], timeframe: str) -> list[Bar]:
    return [c.bar for c in closed if c.bar.timeframe == timeframe]


def test_a_forming_bar_is_emitted_once_with_its_last_values_when_the_next_minute_arrives() -> None:
    agg = aggregator("1m")
    assert agg.add(KEY, minute(0, "100", "100", "100", "100", "1")) == []
    assert agg.add(KEY, minute(0, "100", "101", "99.5", "100.5", "4")) == []
    assert agg.add(KEY, minute(0, "100", "102", "99", "101.25", "7")) == []  # the same minute, grown
    closed = agg.add(KEY, flat(1, "101.5"))
    assert closed == [ClosedBar(KEY, minute(0, "100", "102", "99", "101.25", "7"))]
    # the minute is closed: a late update of it is dropped, never emitted a second time
    assert agg.add(KEY, minute(0, "100", "103", "99", "102", "8")) == []
    assert agg.late == 1


def test_the_clock_closes_a_minute_only_after_its_end_plus_the_grace() -> None:
    agg = aggregator("1m")
    agg.add(KEY, flat(0, "100"))
    assert agg.due(T0 + timedelta(minutes=1)) == []
    assert agg.due(T0 + timedelta(minutes=1) + GRACE - timedelta(microseconds=1)) == []
    closed = agg.due(T0 + timedelta(minutes=1) + GRACE)
    assert [c.bar for c in closed] == [flat(0, "100")]
    assert agg.due(T0 + timedelta(minutes=10)) == []  # emitted once
    # a bar that arrives after its minute's deadline is still taken (Alpaca sends bars after the minute)
    agg.add(KEY, flat(1, "101"))
    assert [c.bar for c in agg.due(T0 + timedelta(minutes=10))] == [flat(1, "101")]


def test_an_older_bar_than_the_forming_one_is_late() -> None:
    agg = aggregator("1m")
    agg.add(KEY, flat(5, "100"))
    assert agg.add(KEY, flat(4, "99")) == []
    assert agg.late == 1
    assert [c.bar for c in agg.due(T0 + timedelta(minutes=7))] == [flat(5, "100")]


def test_symbols_and_keys_are_aggregated_apart() -> None:
    agg = BarAggregator(lambda key, symbol: {"1m"}, GRACE)
    agg.add("acme/alpaca", flat(0, "100", symbol="AAPL"))
    agg.add("acme/alpaca", flat(0, "50", symbol="MSFT"))
    agg.add("acme/ccxt:kraken", flat(0, "200", symbol="AAPL"))
    closed = agg.add("acme/alpaca", flat(1, "101", symbol="AAPL"))
    assert closed == [ClosedBar("acme/alpaca", flat(0, "100", symbol="AAPL"))]
    rest = agg.due(T0 + timedelta(minutes=5))
    assert {(c.key, c.bar.symbol, c.bar.close) for c in rest} == {
        ("acme/alpaca", "MSFT", Decimal(50)),
        ("acme/ccxt:kraken", "AAPL", Decimal(200)),
        ("acme/alpaca", "AAPL", Decimal(101)),
    }


def test_five_minutes_roll_up_into_one_5m_bar_with_exact_ohlcv() -> None:
    agg = aggregator("1m", "5m")
    prices = [
        ("100.10", "100.50", "99.90", "100.20", "1.5"),
        ("100.20", "101.75", "100.00", "101.00", "2.25"),
        ("101.00", "101.10", "98.05", "98.50", "3"),
        ("98.50", "99.00", "98.40", "98.90", "0.125"),
        ("98.90", "99.30", "98.60", "99.15", "4"),
    ]
    emitted: list[ClosedBar] = []
    for i, (o, h, low, c, v) in enumerate(prices):
        emitted += agg.add(KEY, minute(i, o, h, low, c, v))
    assert of(emitted, "5m") == []  # the fifth minute is still forming
    emitted += agg.add(KEY, flat(5, "99.20"))
    assert len(of(emitted, "1m")) == 5
    assert of(emitted, "5m") == [
        Bar(
            symbol="AAPL",
            timeframe="5m",
            ts=T0,
            open=Decimal("100.10"),
            high=Decimal("101.75"),
            low=Decimal("98.05"),
            close=Decimal("99.15"),
            volume=Decimal("10.875"),
        )
    ]


def test_several_timeframes_close_together_at_a_common_boundary() -> None:
    agg = aggregator("5m", "15m", "1h")
    emitted: list[ClosedBar] = []
    for i in range(30):  # 14:30 .. 14:59
        emitted += agg.add(KEY, flat(i, str(100 + i), volume="1"))
    emitted += agg.due(T0 + timedelta(minutes=30) + GRACE)
    assert of(emitted, "1m") == []  # nobody reads 1m bars here: not written
    assert [b.ts for b in of(emitted, "5m")] == [T0 + timedelta(minutes=5 * k) for k in range(6)]
    assert [(b.ts, b.open, b.close, b.volume) for b in of(emitted, "15m")] == [
        (T0, Decimal(100), Decimal(114), Decimal(15)),
        (T0 + timedelta(minutes=15), Decimal(115), Decimal(129), Decimal(15)),
    ]
    # streaming began at 14:30, in the middle of the 14:00 hour: that hour's bar would be wrong
    assert of(emitted, "1h") == []
    assert agg.partial == 1
    for i in range(30, 90):  # 15:00 .. 15:59, a whole hour
        emitted += agg.add(KEY, flat(i, "200", volume="2"))
    emitted += agg.due(T0 + timedelta(minutes=90) + GRACE)
    hours = of(emitted, "1h")
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in hours] == [
        (datetime(2026, 1, 5, 15, tzinfo=UTC), Decimal(200), Decimal(200), Decimal(200), Decimal(200), Decimal(120))
    ]


def test_a_gap_in_the_minutes_closes_the_bucket_it_ran_past() -> None:
    agg = aggregator("1m", "5m")
    emitted: list[ClosedBar] = []
    emitted += agg.add(KEY, flat(0, "100"))
    emitted += agg.add(KEY, flat(1, "102"))
    # no trades from 14:32 to 14:36: the next bar is 14:37, in the next 5m bucket
    emitted += agg.add(KEY, flat(7, "105"))
    emitted += agg.add(KEY, flat(8, "106"))
    five = of(emitted, "5m")
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in five] == [
        (T0, Decimal(100), Decimal(102), Decimal(100), Decimal(102), Decimal(20))
    ]
    # the clock closes the second bucket (14:35) though its last minute never came
    emitted += agg.due(T0 + timedelta(minutes=10) + GRACE)
    five = of(emitted, "5m")
    assert [(b.ts, b.open, b.close, b.volume) for b in five][1:] == [
        (T0 + timedelta(minutes=5), Decimal(105), Decimal(106), Decimal(20))
    ]


def test_a_bucket_is_not_emitted_before_its_end_plus_grace_by_the_clock() -> None:
    agg = aggregator("5m")
    agg.add(KEY, flat(0, "100"))
    agg.add(KEY, flat(1, "101"))
    assert of(agg.due(T0 + timedelta(minutes=2) + GRACE), "5m") == []  # 14:31 closed, the bucket goes on
    assert of(agg.due(T0 + timedelta(minutes=5)), "5m") == []
    [bar] = of(agg.due(T0 + timedelta(minutes=5) + GRACE), "5m")
    assert (bar.open, bar.close, bar.volume) == (Decimal(100), Decimal(101), Decimal(20))


def test_streaming_that_begins_inside_a_bucket_drops_that_bucket_only() -> None:
    agg = aggregator("5m")
    emitted: list[ClosedBar] = []
    for i in range(2, 11):  # begins at 14:32: the 14:30 bucket is partial, 14:35 is whole
        emitted += agg.add(KEY, flat(i, "100"))
    emitted += agg.due(T0 + timedelta(minutes=11) + GRACE)
    assert [b.ts for b in of(emitted, "5m")] == [T0 + timedelta(minutes=5)]
    assert agg.partial == 1


def test_a_timeframe_added_later_starts_at_its_next_whole_bucket() -> None:
    wanted = {"AAPL": {"1m"}}
    agg = aggregator(per_symbol=wanted)
    emitted: list[ClosedBar] = []
    for i in range(3):
        emitted += agg.add(KEY, flat(i, "100"))
    wanted["AAPL"] = {"1m", "5m"}  # a deployment on 5m bars appeared at 14:33
    for i in range(3, 11):
        emitted += agg.add(KEY, flat(i, "100"))
    emitted += agg.due(T0 + timedelta(minutes=11) + GRACE)
    assert [b.ts for b in of(emitted, "5m")] == [T0 + timedelta(minutes=5)]  # not the partial 14:30 bucket
    assert len(of(emitted, "1m")) == 11


def test_only_one_minute_bars_are_taken() -> None:
    agg = aggregator("1m")
    with pytest.raises(NotOneMinute):
        agg.add(KEY, flat(0, "100").model_copy(update={"timeframe": "5m"}))


@pytest.mark.parametrize(
    ("ts", "timeframe", "start", "end"),
    [
        (datetime(2026, 1, 5, 14, 37, 30, tzinfo=UTC), "5m", datetime(2026, 1, 5, 14, 35, tzinfo=UTC), None),
        (datetime(2026, 1, 5, 14, 59, tzinfo=UTC), "1h", datetime(2026, 1, 5, 14, tzinfo=UTC), None),
        (datetime(2026, 1, 5, 14, 59, tzinfo=UTC), "4h", datetime(2026, 1, 5, 12, tzinfo=UTC), None),
        (datetime(2026, 1, 5, 23, 59, tzinfo=UTC), "1d", datetime(2026, 1, 5, tzinfo=UTC), None),
        # weeks begin on Monday: Sunday 2026-01-11 belongs to the week of Monday 2026-01-05
        (datetime(2026, 1, 11, 23, 0, tzinfo=UTC), "1w", datetime(2026, 1, 5, tzinfo=UTC), None),
        (
            datetime(2026, 2, 17, 9, 0, tzinfo=UTC),
            "1mo",
            datetime(2026, 2, 1, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 9, 0, tzinfo=UTC),
            "1mo",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
    ],
)
def test_buckets_are_aligned_to_the_calendar(
    ts: datetime, timeframe: str, start: datetime, end: datetime | None
) -> None:
    assert bucket_start(ts, timeframe) == start
    if end is not None:
        assert bucket_end(start, timeframe) == end
