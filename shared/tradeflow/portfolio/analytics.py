"""Trading analytics: round trips, win rate and P&L by month and by strategy.

A **round trip** is the life of a position in one (account, symbol) from flat to flat: it opens with
the fill that takes the quantity away from zero and closes with the fill that brings it back to zero.
A fill that crosses through zero (long to short) closes one round trip and opens the next with the
remainder. Its P&L is the realized P&L of its closing and reducing fills (average cost, as the books
compute it) minus the fees of all its fills (a crossing fill's fee is split by quantity); it is a win
when that net P&L is positive. A round trip counts in the UTC month of its closing fill, and for the
strategy of the order that opened it (the deployment's strategy; `manual` for manual orders,
`unknown` when the order or deployment is gone). Open round trips are not counted.

Fills are replayed in time order through the same `Position.apply` the books use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Fill, Order, Position

ZERO = Decimal(0)


@dataclass
class RoundTrip:
    account_id: str
    symbol: str
    strategy: str
    opened_at: datetime
    closed_at: datetime | None = None
    realized: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def pnl(self) -> Decimal:
        return self.realized - self.fees


@dataclass
class Bucket:
    key: str
    round_trips: int = 0
    wins: int = 0
    losses: int = 0
    pnl: Decimal = ZERO
    fees: Decimal = ZERO
    trips: list[RoundTrip] = field(default_factory=list, repr=False)

    def add(self, trip: RoundTrip) -> None:
        self.round_trips += 1
        self.wins += trip.pnl > 0
        self.losses += trip.pnl <= 0
        self.pnl += trip.pnl
        self.fees += trip.fees

    @property
    def win_rate(self) -> Decimal | None:
        if not self.round_trips:
            return None
        return (Decimal(self.wins) / Decimal(self.round_trips)).quantize(Decimal("0.0001"))


def round_trips(fills: Iterable[Fill], strategy_of: dict[str, str]) -> list[RoundTrip]:
    """The closed round trips of the fills (of any accounts and symbols), in closing order."""
    ordered = sorted(fills, key=lambda f: (f.ts, f.fill_id))
    positions: dict[tuple[str, str], Position] = {}
    open_trips: dict[tuple[str, str], RoundTrip] = {}
    closed: list[RoundTrip] = []
    for fill in ordered:
        key = (fill.account_id, fill.symbol)
        position = positions.get(key) or Position(
            tenant_id=fill.tenant_id, account_id=fill.account_id, symbol=fill.symbol
        )
        before = position.quantity
        position, realized = position.apply(fill)
        positions[key] = position
        after = position.quantity
        strategy = strategy_of.get(fill.client_order_id, "unknown")
        trip = open_trips.get(key)
        crosses = before != 0 and after != 0 and (before > 0) != (after > 0)
        closing_share = Decimal(1)
        if crosses:
            closing_share = abs(before) / fill.quantity
        if trip is None and before == 0:
            trip = open_trips[key] = RoundTrip(fill.account_id, fill.symbol, strategy, fill.ts)
        if trip is None:  # (cannot happen: a non-flat position always has an open trip)
            continue
        trip.realized += realized
        trip.fees += fill.fee * closing_share
        if after == 0 or crosses:
            trip.closed_at = fill.ts
            closed.append(trip)
            del open_trips[key]
        if crosses:
            open_trips[key] = RoundTrip(
                fill.account_id, fill.symbol, strategy, fill.ts, fees=fill.fee * (1 - closing_share)
            )
    return closed


@dataclass
class Analytics:
    total: Bucket
    by_month: list[Bucket]
    by_strategy: list[Bucket]
    open_round_trips: int


def analyse(
    fills: list[Fill],
    orders: list[Order],
    strategy_by_deployment: dict[str, str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Analytics:
    """Round trips of `fills` (all of them: a trip is replayed from its opening fill) that closed in
    [since, until), grouped."""
    strategy_of = {}
    for order in orders:
        if order.deployment_id is None:
            strategy_of[order.client_order_id] = "manual"
        else:
            strategy_of[order.client_order_id] = strategy_by_deployment.get(order.deployment_id, "unknown")
    trips = round_trips(fills, strategy_of)
    total = Bucket("all")
    months: dict[str, Bucket] = defaultdict(lambda: Bucket(""))
    strategies: dict[str, Bucket] = defaultdict(lambda: Bucket(""))
    for trip in trips:
        assert trip.closed_at is not None
        if (since is not None and trip.closed_at < since) or (until is not None and trip.closed_at >= until):
            continue
        total.add(trip)
        month = trip.closed_at.strftime("%Y-%m")
        months[month].key = month
        months[month].add(trip)
        strategies[trip.strategy].key = trip.strategy
        strategies[trip.strategy].add(trip)
    flat: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for fill in fills:
        flat[(fill.account_id, fill.symbol)] += fill.quantity * fill.side.sign
    open_count = sum(1 for q in flat.values() if q != 0)
    return Analytics(
        total,
        [months[k] for k in sorted(months)],
        [strategies[k] for k in sorted(strategies)],
        open_count,
    )
