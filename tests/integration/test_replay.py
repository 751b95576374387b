"""The market replay on moto: real recorded bars, re-based onto the replay clock, published into the
bars table only once they have closed, warm-up first, until the data runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradeflow.domain import Bar
from tradeflow.local.replay import Feed, MarketReplay
from tradeflow.marketdata.catalog import load_dataset
from tradeflow.storage.bars import BarRepository

from helpers import T0, TENANT, replay

M = timedelta(minutes=1)
FAR = T0 + timedelta(days=3650)


def stored(tenant: str, symbol: str, timeframe: str = "1m") -> list[Bar]:
    return BarRepository().latest(tenant, symbol, timeframe, FAR, 10_000)


def test_warmup_is_published_first_with_the_recorded_prices_and_times(aws: object) -> None:
    market = MarketReplay([Feed(TENANT, "XYZ", "GOOG")], T0, warmup=5)
    assert stored(TENANT, "XYZ") == []  # nothing before the first publish

    assert market.publish_due(T0) == 5
    bars = stored(TENANT, "XYZ")
    assert [b.ts for b in bars] == [T0 - k * M for k in range(5, 0, -1)]  # re-based onto the clock
    # the real first sessions of GOOG (2004-08-19 ...), prices and volumes as recorded
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal(100),
        Decimal("104.06"),
        Decimal("95.96"),
        Decimal("100.34"),
        Decimal(22351900),
    )
    assert first.source_ts == datetime(2004, 8, 19, tzinfo=UTC)
    source = load_dataset("GOOG")[:5]
    assert [(b.open, b.high, b.low, b.close, b.volume, b.source_ts) for b in bars] == [
        (s.open, s.high, s.low, s.close, s.volume, s.ts) for s in source
    ]
    assert {(b.symbol, b.timeframe) for b in bars} == {("XYZ", "1m")}


def test_a_bar_is_published_only_once_it_has_closed(aws: object) -> None:
    market = MarketReplay([Feed(TENANT, "XYZ", "GOOG")], T0, warmup=3)
    market.publish_due(T0)
    source = load_dataset("GOOG")

    assert market.next_due() == T0 + M  # the bar opening at T0 closes a minute later
    assert market.publish_due(T0 + timedelta(seconds=59)) == 0
    assert [b.ts for b in stored(TENANT, "XYZ")][-1] == T0 - M

    assert market.publish_due(T0 + M) == 1
    latest = stored(TENANT, "XYZ")[-1]
    assert (latest.ts, latest.close, latest.source_ts) == (T0, source[3].close, source[3].ts)

    assert market.publish_due(T0 + timedelta(minutes=4, seconds=30)) == 3
    assert market.publish_due(T0 + timedelta(minutes=4, seconds=30)) == 0  # nothing twice
    bars = stored(TENANT, "XYZ")
    assert [b.ts for b in bars] == [T0 + k * M for k in range(-3, 4)]
    assert all(b.ts + M <= T0 + timedelta(minutes=4, seconds=30) for b in bars)  # no look-ahead
    assert [b.close for b in bars] == [s.close for s in source[:7]]
    assert market.published == 7
    assert not market.exhausted()


def test_feeds_go_to_their_own_tenant_and_symbol_and_the_replay_ends(aws: object) -> None:
    btc = load_dataset("BTCUSD")
    start = len(btc) - 6
    feeds = [
        Feed(TENANT, "BTC", "BTCUSD", start_index=start),
        Feed("globex", "EUR", "EURUSD"),
    ]
    market = MarketReplay(feeds, T0, warmup=2, interval=timedelta(hours=1), timeframe="1h")
    assert market.publish_due(T0) == 4  # two warm-up bars per feed
    assert [b.close for b in stored(TENANT, "BTC", "1h")] == [b.close for b in btc[start : start + 2]]
    assert [b.source_ts for b in stored("globex", "EUR", "1h")] == [b.ts for b in load_dataset("EURUSD")[:2]]
    assert stored("globex", "BTC", "1h") == [] and stored(TENANT, "EUR", "1h") == []

    # four more hours exhaust the 6 BTC bars; EURUSD goes on
    assert market.publish_due(T0 + timedelta(hours=4)) == 8
    btc_bars = stored(TENANT, "BTC", "1h")
    assert [b.ts for b in btc_bars] == [T0 + timedelta(hours=h) for h in range(-2, 4)]
    assert [b.source_ts for b in btc_bars] == [b.ts for b in btc[start:]]
    assert btc_bars[-1].source_ts == datetime(2024, 12, 1, tzinfo=UTC)
    assert not market.exhausted()
    assert market.next_due() == T0 + timedelta(hours=5)

    assert market.publish_due(T0 + timedelta(hours=5)) == 1  # only EUR now
    assert len(stored(TENANT, "BTC", "1h")) == 6


def test_exhausted_when_every_feed_has_run_out(aws: object) -> None:
    spy = load_dataset("SPY")
    market = MarketReplay([Feed(TENANT, "SPY", "SPY", start_index=len(spy) - 3)], T0, warmup=1)
    market.publish_due(T0)
    assert not market.exhausted() and market.next_due() == T0 + M
    assert market.publish_due(T0 + 2 * M) == 2
    assert market.exhausted() and market.next_due() is None
    assert market.publish_due(T0 + timedelta(days=1)) == 0
    assert [b.close for b in stored(TENANT, "SPY")] == [b.close for b in spy[-3:]]


def test_replay_helper_publishes_the_warmup_ending_at_the_origin(aws: object) -> None:
    market = replay(TENANT, ("GOOG", "SPY"))
    for symbol in ("GOOG", "SPY"):
        bars = stored(TENANT, symbol)
        assert len(bars) == 40
        assert (bars[0].ts, bars[-1].ts) == (T0 - 40 * M, T0 - M)
        assert [b.close for b in bars] == [b.close for b in load_dataset(symbol)[:40]]
    assert market.published == 80
