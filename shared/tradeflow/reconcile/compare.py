"""Comparing a broker account with our ledger: pure functions of two snapshots, no I/O.

Orders are matched by client order id. Ours carry a `tf-` (strategy, see `domain/ids.py`) or `tfm-`
(manual, see `manual/model.py`) id; any other id at the broker is an order placed there by hand.

The ledger is written *before* the broker is called (design rule 4), so an order of ours that the
broker has and the ledger does not cannot be explained, nor can an order the ledger has as
acknowledged that the broker does not know. An order still `new` in the ledger may be on its way to
the broker right now: it is left alone for a grace period (far longer than the execution function
can run), after which, unknown to the broker, it provably never reached it.

Positions are judged on two reads of the broker's positions, one before the order snapshot and one
after the repairs, with the ledger's positions read between them: a fill that lands while we compare
changes the broker's position between the two reads, and that symbol is left for the next run instead
of halting the account on a race.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import Order, OrderStatus
from tradeflow.domain.orders import can_transition
from tradeflow.manual.model import ORDER_PREFIX as MANUAL_PREFIX
from tradeflow.reconcile.differences import Difference, DifferenceKind, Remedy

STRATEGY_PREFIX = "tf-"
OUR_PREFIXES = (STRATEGY_PREFIX, MANUAL_PREFIX)
ZERO = Decimal(0)

# How far an open order has progressed; the broker being further along is something to sync.
_PROGRESS = {
    OrderStatus.NEW: 0,
    OrderStatus.SUBMITTED: 1,
    OrderStatus.ACCEPTED: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
}


def is_ours(client_order_id: str) -> bool:
    return client_order_id.startswith(OUR_PREFIXES)


def in_flight(order: Order, now: datetime, grace: timedelta) -> bool:
    """A `new` order young enough that the execution function may still be submitting it."""
    return order.status is OrderStatus.NEW and order.created_at > now - grace


def _ledger_state(order: Order) -> str:
    return f"{order.status.value}, {order.filled_quantity} of {order.quantity} filled"


def _broker_state(order: BrokerOrder) -> str:
    return f"{order.status.value}, {order.filled_quantity} of {order.quantity} filled"


def compare_order(
    ledger: Order | None, broker: BrokerOrder | None, *, now: datetime, since: datetime, grace: timedelta
) -> Difference | None:
    """How one order differs between the ledger and the broker (None: they agree, or it is too early
    to tell)."""
    if ledger is None:
        if broker is None:
            return None
        return _unknown_to_ledger(broker, since)
    if broker is None:
        return _unknown_to_broker(ledger, now, grace)
    base = {
        "symbol": ledger.symbol,
        "client_order_id": ledger.client_order_id,
        "ledger": _ledger_state(ledger),
        "broker": _broker_state(broker),
        "order": ledger,
        "broker_order": broker,
    }
    ours, theirs = ledger.filled_quantity, broker.filled_quantity
    if theirs > ours:
        if ledger.status.final:
            return Difference(
                kind=DifferenceKind.ORDER_CONFLICT,
                halts=True,
                detail=f"the ledger closed the order as {ledger.status.value} but the broker filled {theirs}",
                **base,
            )
        return Difference(kind=DifferenceKind.MISSED_FILL, remedy=Remedy.SYNC, **base)
    if theirs < ours:
        return Difference(
            kind=DifferenceKind.ORDER_CONFLICT,
            halts=True,
            detail="the ledger recorded more fills than the broker reports",
            **base,
        )
    if ledger.status == broker.status:
        return None
    if ledger.status.final:
        if broker.status.final:
            return Difference(kind=DifferenceKind.FINAL_STATUS, detail="no fill differs", **base)
        return Difference(
            kind=DifferenceKind.ORDER_CONFLICT,
            halts=True,
            detail="closed in the ledger but open at the broker",
            **base,
        )
    if broker.status.final:
        return Difference(kind=DifferenceKind.CLOSED_AT_BROKER, remedy=Remedy.SYNC, **base)
    if in_flight(ledger, now, grace):
        return None  # the execution function is recording the broker's acknowledgement itself
    behind = _PROGRESS.get(broker.status, 0) > _PROGRESS.get(ledger.status, 0)
    if behind and can_transition(ledger.status, broker.status):
        return Difference(kind=DifferenceKind.STATUS_BEHIND, remedy=Remedy.SYNC, **base)
    return None


def _unknown_to_ledger(broker: BrokerOrder, since: datetime) -> Difference | None:
    base = {
        "symbol": broker.symbol,
        "client_order_id": broker.client_order_id,
        "broker": _broker_state(broker),
        "broker_order": broker,
    }
    if is_ours(broker.client_order_id):
        return Difference(
            kind=DifferenceKind.UNKNOWN_TO_LEDGER,
            halts=True,
            ledger="no such order",
            detail="the broker has an order with our client order id that the ledger does not know",
            **base,
        )
    if broker.updated_at < since:
        return None  # recorded by an earlier run already
    return Difference(
        kind=DifferenceKind.MANUAL_ORDER,
        ledger="not ours",
        detail="placed at the broker by hand; it counts only through the positions it changes",
        **base,
    )


def _unknown_to_broker(ledger: Order, now: datetime, grace: timedelta) -> Difference | None:
    if ledger.status.final or in_flight(ledger, now, grace):
        return None
    base = {
        "symbol": ledger.symbol,
        "client_order_id": ledger.client_order_id,
        "ledger": _ledger_state(ledger),
        "broker": "no such order",
        "order": ledger,
    }
    if ledger.status is OrderStatus.NEW:
        return Difference(
            kind=DifferenceKind.NEVER_SUBMITTED,
            remedy=Remedy.CLOSE_UNSUBMITTED,
            detail=f"still new after {grace} and unknown to the broker: it never reached the broker",
            **base,
        )
    return Difference(
        kind=DifferenceKind.UNKNOWN_TO_BROKER,
        halts=True,
        detail="the ledger has the order as acknowledged by the broker, which does not know it",
        **base,
    )


def newest(orders: Iterable[BrokerOrder]) -> dict[str, BrokerOrder]:
    """The broker's orders by client order id, the most recently updated report of each."""
    found: dict[str, BrokerOrder] = {}
    for order in orders:
        known = found.get(order.client_order_id)
        if known is None or (order.updated_at, order.filled_quantity) >= (known.updated_at, known.filled_quantity):
            found[order.client_order_id] = order
    return found


def to_look_up(
    ledger: Iterable[Order], listed: Mapping[str, BrokerOrder], now: datetime, grace: timedelta
) -> list[str]:
    """Open ledger orders the broker's lists did not include: each is asked for by client order id
    (the broker may have closed it long ago, before the window of its recent orders)."""
    return sorted(
        o.client_order_id
        for o in ledger
        if not o.status.final and o.client_order_id not in listed and not in_flight(o, now, grace)
    )


def compare_orders(
    ledger: Iterable[Order],
    broker: Mapping[str, BrokerOrder],
    *,
    now: datetime,
    since: datetime,
    grace: timedelta,
) -> list[Difference]:
    """Every order difference. `broker` holds the broker's orders by client order id: its open and
    recent orders, and what the lookups of `to_look_up` found."""
    ours = {o.client_order_id: o for o in ledger}
    differences = []
    for client_order_id in sorted(set(broker) | {c for c, o in ours.items() if not o.status.final}):
        found = compare_order(ours.get(client_order_id), broker.get(client_order_id), now=now, since=since, grace=grace)
        if found is not None:
            differences.append(found)
    return differences


def compare_positions(
    ledger: Mapping[str, Decimal],
    broker_before: Mapping[str, Decimal],
    broker_after: Mapping[str, Decimal],
    tolerance: Decimal = ZERO,
) -> list[Difference]:
    """Position quantities that differ (signed, by symbol; a missing symbol is flat)."""
    differences = []
    for symbol in sorted(set(ledger) | set(broker_before) | set(broker_after)):
        ours = ledger.get(symbol, ZERO)
        before, after = broker_before.get(symbol, ZERO), broker_after.get(symbol, ZERO)
        if abs(ours - after) <= tolerance:
            continue
        if before != after:
            differences.append(
                Difference(
                    kind=DifferenceKind.POSITION_UNSETTLED,
                    symbol=symbol,
                    ledger=str(ours),
                    broker=f"{before} then {after}",
                    detail="the broker's position changed while we compared; judged at the next run",
                )
            )
            continue
        differences.append(
            Difference(
                kind=DifferenceKind.POSITION,
                halts=True,
                symbol=symbol,
                ledger=str(ours),
                broker=str(after),
                detail=f"differs by {after - ours} after the safe repairs",
            )
        )
    return differences


def compare_cash(ledger: Decimal, broker: Decimal, tolerance: Decimal = ZERO) -> Difference | None:
    """Cash that differs: recorded and alerted, never halting (fees, interest and transfers at the
    broker move cash legitimately)."""
    if abs(broker - ledger) <= tolerance:
        return None
    return Difference(
        kind=DifferenceKind.CASH,
        ledger=str(ledger),
        broker=str(broker),
        detail=f"differs by {broker - ledger}",
    )
