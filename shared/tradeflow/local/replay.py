"""Replaying real historical bars into the bars table as the local clock moves.

The k-th historical bar of a feed is re-based onto the replay clock: it opens at
`origin + (k - warmup) x interval` and is published when it closes (no look-ahead). Prices and volumes
are the recorded ones; the recorded time is kept in `source_ts`. The first `warmup` bars are published
before the clock starts so strategies can decide from the first tick.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tradeflow.domain import Bar
from tradeflow.marketdata.catalog import load_dataset
from tradeflow.storage.bars import BarRepository


@dataclass(frozen=True)
class Feed:
    tenant_id: str | None  # None: a market-only feed (the local brokers' market; no tenant's bars table)
    symbol: str  # as traded in the replay
    dataset: str  # which shipped dataset supplies the prices
    start_index: int = 0


class MarketReplay:
    def __init__(
        self,
        feeds: list[Feed],
        origin: datetime,
        warmup: int,
        interval: timedelta = timedelta(minutes=1),
        timeframe: str = "1m",
    ) -> None:
        self.feeds = feeds
        self.origin = origin
        self.warmup = warmup
        self.interval = interval
        self.timeframe = timeframe
        self.bars = BarRepository()
        # told of every bar published, once per bar (the local broker stubs' market moves with the replay)
        self.listeners: list[Callable[[Bar], None]] = []
        self._source = {f: load_dataset(f.dataset)[f.start_index :] for f in feeds}
        self._next = dict.fromkeys(feeds, 0)  # index of the next bar to publish per feed
        self.published = 0

    def bar(self, feed: Feed, k: int) -> Bar:
        source = self._source[feed][k]
        return Bar(
            symbol=feed.symbol,
            timeframe=self.timeframe,
            ts=self.origin + (k - self.warmup) * self.interval,
            open=source.open,
            high=source.high,
            low=source.low,
            close=source.close,
            volume=source.volume,
            source_ts=source.ts,
        )

    def _closes_at(self, feed: Feed, k: int) -> datetime:
        return self.origin + (k - self.warmup + 1) * self.interval

    def next_due(self) -> datetime | None:
        due = [self._closes_at(f, k) for f, k in self._next.items() if k < len(self._source[f])]
        return min(due) if due else None

    def exhausted(self) -> bool:
        return self.next_due() is None

    def publish_due(self, now: datetime) -> int:
        """Write every bar that has closed by `now`; returns how many."""
        batches: dict[str | None, list[Bar]] = defaultdict(list)
        for feed, first in self._next.items():
            source = self._source[feed]
            k = first
            while k < len(source) and self._closes_at(feed, k) <= now:
                batches[feed.tenant_id].append(self.bar(feed, k))
                k += 1
            self._next[feed] = k
        count = 0
        told: set[tuple[str, datetime]] = set()
        for tenant_id, bars in batches.items():
            bars.sort(key=lambda b: (b.ts, b.symbol))
            if tenant_id is not None:
                self.bars.put_many(tenant_id, bars)
                count += len(bars)
            for bar in bars:
                if (bar.symbol, bar.ts) not in told:
                    told.add((bar.symbol, bar.ts))
                    for listener in self.listeners:
                        listener(bar)
        self.published += count
        return count
