"""An account's equity curve, rebuilt from what was recorded: the capital ledger, the fills and the bars.

How a point is computed (the same rules as `tradeflow.portfolio.valuation`, applied at past times):

- **cash** at time t is the sum of the account's ledger entries (deposits, trade cash, fees, resets)
  with `ts <= t` — the ledger is the record of every cash movement, so this is the cash the account had.
- **holdings** at t are the signed sum of the account's fills with `ts <= t`, per symbol; a `reset`
  ledger entry flattens every holding at its time (a reset zeroes the positions without fills).
- **mark** of a symbol at t is the close of its latest bar of the account's timeframe opened at or
  before t, else the price of its latest fill at or before t (bars expire from the table after 30 days).
- **market_value** = sum of holdings x marks; **equity** = cash + market_value.

A point is emitted at every instant something changed: a ledger entry, a fill, or a new bar of a symbol
held at that moment (mark-to-market between trades). With `since`, a first point at `since` carries the
state as of then. Points are kept within `[since, until)`. When there are more than `limit`, the window
is cut into `limit` equal time slices and the last point of each slice is kept: every point returned is
still an exact state of the account at its time (and the latest point is always kept).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Account, Bar, Fill, LedgerEntry, LedgerEntryKind
from tradeflow.domain.types import iso
from tradeflow.portfolio.valuation import timeframe_of
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.keys import bars_pk
from tradeflow.storage.ledger import LedgerRepository

ZERO = Decimal(0)
# The records of one instant are applied in this order: cash and trades first, then the marks.
_ORDER: dict[str, int] = {"ledger": 0, "fill": 1, "bar": 2}


@dataclass(frozen=True)
class EquityPoint:
    ts: datetime
    cash: Decimal
    market_value: Decimal

    @property
    def equity(self) -> Decimal:
        return self.cash + self.market_value


@dataclass(frozen=True)
class EquityCurve:
    account: Account
    timeframe: str
    points: list[EquityPoint]
    sampled: bool  # True when points were thinned to `limit`


def _events(
    entries: list[LedgerEntry], fills: list[Fill], bars: dict[str, list[Bar]]
) -> list[tuple[datetime, int, LedgerEntry | Fill | Bar]]:
    events: list[tuple[datetime, int, LedgerEntry | Fill | Bar]] = [(e.ts, _ORDER["ledger"], e) for e in entries]
    events += [(f.ts, _ORDER["fill"], f) for f in fills]
    events += [(b.ts, _ORDER["bar"], b) for series in bars.values() for b in series]
    events.sort(key=lambda e: (e[0], e[1]))
    return events


class _Books:
    """The account's state while the records are replayed in time order."""

    def __init__(self) -> None:
        self.cash = ZERO
        self.held: dict[str, Decimal] = defaultdict(Decimal)
        self.bar_marks: dict[str, Decimal] = {}
        self.fill_marks: dict[str, Decimal] = {}
        self.seen = False  # any record applied yet

    def apply(self, record: LedgerEntry | Fill | Bar) -> bool:
        """Apply one record; True when it changed cash, holdings or the value of a holding."""
        if isinstance(record, Bar):
            self.bar_marks[record.symbol] = record.close
            return bool(self.held.get(record.symbol))
        self.seen = True
        if isinstance(record, Fill):
            self.held[record.symbol] += record.quantity * record.side.sign
            self.fill_marks[record.symbol] = record.price
        else:
            self.cash += record.amount
            if record.kind is LedgerEntryKind.RESET:
                self.held.clear()
        return True

    def point(self, ts: datetime) -> EquityPoint:
        value = ZERO
        for symbol, quantity in self.held.items():
            if quantity:
                value += quantity * self.bar_marks.get(symbol, self.fill_marks.get(symbol, ZERO))
        return EquityPoint(ts, self.cash, value)


def replay(
    entries: list[LedgerEntry],
    fills: list[Fill],
    bars: dict[str, list[Bar]],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[EquityPoint]:
    """The curve's points (see the module's rules) from already loaded records; pure, for tests."""
    books = _Books()
    points: list[EquityPoint] = []
    opened = since is None  # the point at `since` is made once, when the replay reaches it
    events = _events(entries, fills, bars)
    at = 0
    while at < len(events):
        ts = events[at][0]
        if until is not None and ts >= until:
            break
        changed = False
        if not opened and since is not None and ts >= since:
            opened = True
            if ts > since and books.seen:
                points.append(books.point(since))
            changed = ts == since and books.seen  # the state at `since` is the window's first point
        while at < len(events) and events[at][0] == ts:  # everything recorded at one instant, then one point
            changed = books.apply(events[at][2]) or changed
            at += 1
        if changed and (since is None or ts >= since):
            points.append(books.point(ts))
    if not opened and since is not None and books.seen:
        points.append(books.point(since))  # nothing happened in the window: the state at its start
    return points


def thin(points: list[EquityPoint], limit: int) -> list[EquityPoint]:
    """At most `limit` points: the last one of each of `limit` equal time slices of the curve's span."""
    if len(points) <= limit:
        return points
    first, last = points[0].ts, points[-1].ts
    span = (last - first).total_seconds()
    if span <= 0:
        return points[-limit:]
    kept: dict[int, EquityPoint] = {}
    for p in points:
        kept[min(limit - 1, int((p.ts - first).total_seconds() / span * limit))] = p
    return [kept[k] for k in sorted(kept)]


class EquityHistory:
    """Loads an account's records and replays them into its equity curve."""

    def __init__(self) -> None:
        self.ledger = LedgerRepository()
        self.fills = FillRepository()
        self.bars = BarRepository()
        self.bar_table = DynamoTable("bars")

    def _bars(
        self, account: Account, symbol: str, timeframe: str, start: datetime, until: datetime | None
    ) -> list[Bar]:
        """The symbol's bars from the last one opened at or before `start` (its mark then) up to `until`."""
        before = self.bars.latest(account.tenant_id, symbol, timeframe, start, 1)
        condition, values = "#sk > :start", {":start": iso(start)}
        if until is not None:
            condition, values = "#sk BETWEEN :start AND :until", {":start": iso(start), ":until": iso(until)}
        items = self.bar_table.query(
            bars_pk(account.tenant_id, symbol, timeframe), sk_condition=condition, values=values
        )
        return before + [b for b in (Bar.model_validate(i) for i in items) if b.ts > start]

    def curve(
        self, account: Account, since: datetime | None = None, until: datetime | None = None, limit: int = 1000
    ) -> EquityCurve:
        entries = self.ledger.list(account.tenant_id, account.account_id)
        fills = self.fills.list(account.tenant_id, account.account_id)
        timeframe = timeframe_of(account)
        bars: dict[str, list[Bar]] = {}
        first_fill: dict[str, datetime] = {}
        for fill in sorted(fills, key=lambda f: f.ts):
            first_fill.setdefault(fill.symbol, fill.ts)
        for symbol, opened in first_fill.items():
            # bars matter only once the symbol was first traded, and only those up to the window's end
            start = max(opened, since) if since is not None else opened
            if until is None or start < until:
                bars[symbol] = self._bars(account, symbol, timeframe, start, until)
        points = replay(entries, fills, bars, since, until)
        kept = thin(points, limit)
        return EquityCurve(account, timeframe, kept, sampled=len(kept) < len(points))
