"""The pure parts of reconciliation: comparing a broker snapshot with the ledger, order expiry and
sessions, the account's settings, the halt reason and the run's request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tradeflow.brokers.port import BrokerFill, BrokerOrder
from tradeflow.domain import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.reconcile.compare import (
    compare_cash,
    compare_order,
    compare_orders,
    compare_positions,
    is_ours,
    newest,
    to_look_up,
)
from tradeflow.reconcile.differences import DifferenceKind, Remedy
from tradeflow.reconcile.expiry import eastern_offset, expiry, session_of
from tradeflow.reconcile.models import ReconcileRequest
from tradeflow.reconcile.policy import GRACE, ReconcilePolicy
from tradeflow.reconcile.service import halt_reason

NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)  # a Wednesday
SINCE = NOW - timedelta(minutes=15)
COID = "tf-abcdefghijklmnopqrstuvwxyz234567"


def order(
    status: OrderStatus = OrderStatus.ACCEPTED,
    filled: str = "0",
    *,
    coid: str = COID,
    created: datetime = NOW - timedelta(hours=1),
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = "GOOG",
) -> Order:
    return Order(
        tenant_id="acme",
        account_id="acct-1",
        client_order_id=coid,
        symbol=symbol,
        side=OrderSide.BUY,
        quantity=Decimal(10),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(100),
        time_in_force=tif,
        status=status,
        filled_quantity=Decimal(filled),
        created_at=created,
        updated_at=created,
    )


def at_broker(
    status: OrderStatus = OrderStatus.ACCEPTED,
    filled: str = "0",
    *,
    coid: str = COID,
    updated: datetime = NOW - timedelta(minutes=5),
) -> BrokerOrder:
    fills = []
    if Decimal(filled) > 0:
        fills = [
            BrokerFill(
                ref=f"b-1@{filled}",
                quantity=Decimal(filled),
                price=Decimal(99),
                ts=updated,
                cumulative_quantity=Decimal(filled),
                cumulative_average=Decimal(99),
            )
        ]
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id="b-1",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(10),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal(100),
        status=status,
        filled_quantity=Decimal(filled),
        fills=fills,
        submitted_at=updated - timedelta(minutes=30),
        updated_at=updated,
    )


def compare(ledger: Order | None, broker: BrokerOrder | None) -> Any:
    return compare_order(ledger, broker, now=NOW, since=SINCE, grace=GRACE)


# -- orders ----------------------------------------------------------------------------------------


def test_orders_that_agree_are_no_difference() -> None:
    assert compare(order(OrderStatus.ACCEPTED), at_broker(OrderStatus.ACCEPTED)) is None
    assert compare(order(OrderStatus.FILLED, "10"), at_broker(OrderStatus.FILLED, "10")) is None
    assert compare(order(OrderStatus.PARTIALLY_FILLED, "4"), at_broker(OrderStatus.PARTIALLY_FILLED, "4")) is None


@pytest.mark.parametrize(
    ("ledger", "broker"),
    [
        (order(OrderStatus.ACCEPTED), at_broker(OrderStatus.PARTIALLY_FILLED, "4")),
        (order(OrderStatus.PARTIALLY_FILLED, "4"), at_broker(OrderStatus.FILLED, "10")),
        (order(OrderStatus.SUBMITTED), at_broker(OrderStatus.CANCELLED, "3")),
        # filled at once while the execution function is still recording it: the same safe path
        (order(OrderStatus.NEW, created=NOW - timedelta(seconds=5)), at_broker(OrderStatus.FILLED, "10")),
    ],
)
def test_a_fill_the_ledger_missed_is_synced(ledger: Order, broker: BrokerOrder) -> None:
    found = compare(ledger, broker)
    assert found.kind is DifferenceKind.MISSED_FILL and found.remedy is Remedy.SYNC and not found.halts
    assert found.broker_order == broker and found.ledger.startswith(ledger.status.value)


@pytest.mark.parametrize("closed", [OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_an_order_the_broker_closed_is_synced(closed: OrderStatus) -> None:
    found = compare(order(OrderStatus.ACCEPTED), at_broker(closed))
    assert (found.kind, found.remedy, found.halts) == (DifferenceKind.CLOSED_AT_BROKER, Remedy.SYNC, False)
    assert found.broker == f"{closed.value}, 0 of 10 filled"


def test_an_acknowledgement_the_ledger_missed_is_synced_once_past_the_grace_period() -> None:
    young = order(OrderStatus.NEW, created=NOW - timedelta(minutes=1))
    assert compare(young, at_broker(OrderStatus.ACCEPTED)) is None  # execution is on it
    old = order(OrderStatus.NEW, created=NOW - GRACE - timedelta(seconds=1))
    found = compare(old, at_broker(OrderStatus.ACCEPTED))
    assert (found.kind, found.remedy) == (DifferenceKind.STATUS_BEHIND, Remedy.SYNC)
    assert compare(order(OrderStatus.SUBMITTED), at_broker(OrderStatus.ACCEPTED)).remedy is Remedy.SYNC
    # the ledger ahead of the broker's status word (no fill differs) is nothing to repair
    assert compare(order(OrderStatus.ACCEPTED), at_broker(OrderStatus.SUBMITTED)) is None


def test_a_new_order_unknown_to_the_broker_is_closed_only_after_the_grace_period() -> None:
    assert compare(order(OrderStatus.NEW, created=NOW - GRACE + timedelta(seconds=1)), None) is None
    found = compare(order(OrderStatus.NEW, created=NOW - GRACE - timedelta(seconds=1)), None)
    assert (found.kind, found.remedy, found.halts) == (DifferenceKind.NEVER_SUBMITTED, Remedy.CLOSE_UNSUBMITTED, False)
    assert found.broker == "no such order"


@pytest.mark.parametrize("status", [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED])
def test_an_acknowledged_order_unknown_to_the_broker_halts(status: OrderStatus) -> None:
    found = compare(order(status, "2" if status is OrderStatus.PARTIALLY_FILLED else "0"), None)
    assert (found.kind, found.halts, found.remedy) == (DifferenceKind.UNKNOWN_TO_BROKER, True, Remedy.RECORD)


def test_a_closed_ledger_order_missing_at_the_broker_is_no_difference() -> None:
    assert compare(order(OrderStatus.FILLED, "10"), None) is None


def test_an_order_of_ours_unknown_to_the_ledger_halts_and_a_hand_placed_one_is_recorded() -> None:
    ours = compare(None, at_broker(OrderStatus.FILLED, "10"))
    assert (ours.kind, ours.halts) == (DifferenceKind.UNKNOWN_TO_LEDGER, True)
    manual_api_order = compare(None, at_broker(coid="tfm-" + "a" * 32))
    assert manual_api_order.kind is DifferenceKind.UNKNOWN_TO_LEDGER  # the API's manual orders are ours too
    by_hand = compare(None, at_broker(OrderStatus.FILLED, "10", coid="my-own-order-17"))
    assert (by_hand.kind, by_hand.halts, by_hand.remedy) == (DifferenceKind.MANUAL_ORDER, False, Remedy.RECORD)
    # a hand-placed order last updated before this run's window was recorded by an earlier run
    old = at_broker(OrderStatus.FILLED, "10", coid="my-own-order-17", updated=SINCE - timedelta(seconds=1))
    assert compare(None, old) is None


@pytest.mark.parametrize(
    ("ledger", "broker", "detail"),
    [
        (order(OrderStatus.FILLED, "10"), at_broker(OrderStatus.PARTIALLY_FILLED, "4"), "more fills"),
        (order(OrderStatus.CANCELLED, "0"), at_broker(OrderStatus.FILLED, "10"), "closed the order as cancelled"),
        (order(OrderStatus.CANCELLED, "0"), at_broker(OrderStatus.ACCEPTED), "open at the broker"),
    ],
)
def test_states_no_repair_can_reconcile_halt(ledger: Order, broker: BrokerOrder, detail: str) -> None:
    found = compare(ledger, broker)
    assert (found.kind, found.halts, found.remedy) == (DifferenceKind.ORDER_CONFLICT, True, Remedy.RECORD)
    assert detail in found.detail


def test_final_states_that_differ_only_in_name_are_recorded() -> None:
    found = compare(order(OrderStatus.REJECTED), at_broker(OrderStatus.CANCELLED))
    assert (found.kind, found.halts, found.remedy) == (DifferenceKind.FINAL_STATUS, False, Remedy.RECORD)


def test_our_prefixes() -> None:
    assert is_ours(COID) and is_ours("tfm-" + "b" * 32)
    assert not is_ours("tfx-1") and not is_ours("web-123") and not is_ours("")


def test_open_ledger_orders_the_lists_left_out_are_looked_up() -> None:
    listed = newest([at_broker(coid="tf-listed")])
    ledger = [
        order(coid="tf-listed"),
        order(coid="tf-missing"),
        order(OrderStatus.FILLED, "10", coid="tf-final"),
        order(OrderStatus.NEW, coid="tf-young", created=NOW - timedelta(minutes=1)),
        order(OrderStatus.NEW, coid="tf-stuck", created=NOW - timedelta(hours=1)),
    ]
    assert to_look_up(ledger, listed, NOW, GRACE) == ["tf-missing", "tf-stuck"]


def test_the_newest_report_of_an_order_wins() -> None:
    early = at_broker(OrderStatus.ACCEPTED, updated=NOW - timedelta(minutes=9))
    late = at_broker(OrderStatus.PARTIALLY_FILLED, "3", updated=NOW - timedelta(minutes=2))
    assert newest([late, early])[COID] == late
    assert newest([early, late])[COID] == late


def test_compare_orders_covers_both_sides() -> None:
    ledger = [
        order(coid="tf-same"),
        order(coid="tf-gone"),
        order(OrderStatus.FILLED, "10", coid="tf-done"),
    ]
    broker = newest([at_broker(coid="tf-same"), at_broker(OrderStatus.EXPIRED, coid="tf-extra"), at_broker(coid="x-1")])
    found = compare_orders(ledger, broker, now=NOW, since=SINCE, grace=GRACE)
    assert [(d.client_order_id, d.kind) for d in found] == [
        ("tf-extra", DifferenceKind.UNKNOWN_TO_LEDGER),
        ("tf-gone", DifferenceKind.UNKNOWN_TO_BROKER),
        ("x-1", DifferenceKind.MANUAL_ORDER),
    ]


# -- positions and cash ----------------------------------------------------------------------------


def test_positions_that_agree_are_no_difference() -> None:
    same = {"GOOG": Decimal(10), "BTC/USD": Decimal("0.5")}
    assert compare_positions(same, same, dict(same)) == []
    assert (
        compare_positions({"GOOG": Decimal(10), "AAPL": Decimal(0)}, {"GOOG": Decimal(10)}, {"GOOG": Decimal(10)}) == []
    )


def test_a_stable_position_difference_halts() -> None:
    [found] = compare_positions({"GOOG": Decimal(10)}, {"GOOG": Decimal(15)}, {"GOOG": Decimal(15)})
    assert (found.kind, found.halts, found.symbol, found.ledger, found.broker) == (
        DifferenceKind.POSITION,
        True,
        "GOOG",
        "10",
        "15",
    )
    [short] = compare_positions({}, {"TSLA": Decimal(-3)}, {"TSLA": Decimal(-3)})
    assert short.halts and short.ledger == "0" and short.broker == "-3"


def test_a_position_that_moved_while_comparing_is_left_for_the_next_run() -> None:
    [found] = compare_positions({"GOOG": Decimal(10)}, {"GOOG": Decimal(10)}, {"GOOG": Decimal(15)})
    assert (found.kind, found.halts) == (DifferenceKind.POSITION_UNSETTLED, False)


def test_position_tolerance() -> None:
    ledger, broker = {"BTC/USD": Decimal("0.5")}, {"BTC/USD": Decimal("0.4995")}
    assert compare_positions(ledger, broker, broker, Decimal("0.001")) == []
    assert compare_positions(ledger, broker, broker, Decimal("0.0001"))[0].halts


def test_cash_differences_are_recorded_never_halting() -> None:
    assert compare_cash(Decimal("1000.00"), Decimal(1000)) is None
    found = compare_cash(Decimal(1000), Decimal("998.5"))
    assert found is not None and (found.kind, found.halts) == (DifferenceKind.CASH, False)
    assert found.detail == "differs by -1.5"
    assert compare_cash(Decimal(1000), Decimal("999.995"), Decimal("0.01")) is None


# -- expiry ----------------------------------------------------------------------------------------


def test_eastern_time_matches_the_tz_database() -> None:
    reference = ZoneInfo("America/New_York")
    instant = datetime(2025, 1, 1, tzinfo=UTC)
    while instant < datetime(2028, 1, 1, tzinfo=UTC):
        assert eastern_offset(instant) == instant.astimezone(reference).utcoffset(), instant
        instant += timedelta(minutes=30)


def day_order(created: datetime, symbol: str = "GOOG") -> Order:
    return order(OrderStatus.ACCEPTED, tif=TimeInForce.DAY, created=created, symbol=symbol)


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


def test_a_day_order_of_an_earlier_utc_day_expires_for_crypto_and_paper() -> None:
    placed = datetime(2026, 1, 5, 23, 50, tzinfo=UTC)
    policy = ReconcilePolicy()
    for broker in ("paper", "ccxt:binance"):
        assert expiry(day_order(placed), datetime(2026, 1, 5, 23, 59, tzinfo=UTC), broker, policy) is None
        found = expiry(day_order(placed), datetime(2026, 1, 6, 0, 1, tzinfo=UTC), broker, policy)
        assert found is not None and (found.kind, found.remedy) == (DifferenceKind.DAY_ORDER_EXPIRED, Remedy.CANCEL)
        assert "2026-01-05 session" in found.detail
    # crypto at Alpaca trades around the clock: UTC days too
    assert expiry(day_order(placed, "BTC/USD"), datetime(2026, 1, 6, 0, 1, tzinfo=UTC), "alpaca", policy) is not None


def test_a_us_stock_day_order_lives_for_its_eastern_session() -> None:
    policy = ReconcilePolicy()
    placed = et(2026, 1, 5, 15, 0)  # Monday 15:00 ET
    assert session_of(day_order(placed), "alpaca").isoformat() == "2026-01-05"
    # 23:30 ET is already Tuesday in UTC, but still Monday's session in New York
    assert expiry(day_order(placed), et(2026, 1, 5, 23, 30), "alpaca", policy) is None
    found = expiry(day_order(placed), et(2026, 1, 6, 0, 30), "alpaca", policy)
    assert found is not None and found.kind is DifferenceKind.DAY_ORDER_EXPIRED


def test_a_us_stock_day_order_placed_after_the_close_belongs_to_the_next_weekday() -> None:
    policy = ReconcilePolicy()
    friday_evening = et(2026, 1, 9, 17, 0)
    assert session_of(day_order(friday_evening), "alpaca").isoformat() == "2026-01-12"  # Monday
    for now in (et(2026, 1, 10, 18, 0), et(2026, 1, 11, 23, 0), et(2026, 1, 12, 15, 0)):
        assert expiry(day_order(friday_evening), now, "alpaca", policy) is None, now  # not stale over the weekend
    assert expiry(day_order(friday_evening), et(2026, 1, 13, 0, 5), "alpaca", policy) is not None
    summer_evening = et(2026, 7, 14, 16, 0)  # at the close (EDT): the next day's session
    assert session_of(day_order(summer_evening), "alpaca").isoformat() == "2026-07-15"


def test_stale_orders_by_time_in_force() -> None:
    policy = ReconcilePolicy()
    gtc = order(tif=TimeInForce.GTC, created=NOW - timedelta(days=29))
    assert expiry(gtc, NOW, "paper", policy) is None
    old_gtc = order(tif=TimeInForce.GTC, created=NOW - timedelta(days=31))
    found = expiry(old_gtc, NOW, "paper", policy)
    assert (
        found is not None and found.kind is DifferenceKind.STALE_ORDER and "gtc order open for 744.0 h" in found.detail
    )
    ioc = order(tif=TimeInForce.IOC, created=NOW - timedelta(hours=25))
    assert expiry(ioc, NOW, "paper", policy) is not None
    assert expiry(order(tif=TimeInForce.IOC, created=NOW - timedelta(hours=23)), NOW, "paper", policy) is None


def test_an_account_tunes_its_maximum_ages() -> None:
    policy = ReconcilePolicy.from_config({"stale_order_hours": "2", "stale_gtc_days": 1, "fill_model": "next_open"})
    assert (policy.stale_order_hours, policy.stale_gtc_days) == (Decimal(2), Decimal(1))
    today = order(tif=TimeInForce.DAY, created=NOW - timedelta(hours=3))
    found = expiry(today, NOW, "paper", policy)
    assert found is not None and found.kind is DifferenceKind.STALE_ORDER
    assert expiry(order(tif=TimeInForce.GTC, created=NOW - timedelta(hours=25)), NOW, "paper", policy) is not None


def test_an_invalid_setting_falls_back_to_its_default_alone() -> None:
    policy = ReconcilePolicy.from_config({"stale_order_hours": "-1", "stale_gtc_days": "7", "position_tolerance": "x"})
    assert policy.stale_order_hours == Decimal(24)
    assert policy.stale_gtc_days == Decimal(7)
    assert policy.position_tolerance == Decimal(0)


# -- the halt reason and the request ---------------------------------------------------------------


def test_the_halt_reason_names_the_differences_and_stays_short() -> None:
    one = compare_positions({"GOOG": Decimal(0)}, {"GOOG": Decimal(5)}, {"GOOG": Decimal(5)})
    reason = halt_reason("paper", one)
    assert reason.startswith("reconciliation: the books differ from paper")
    assert "position GOOG: ledger 0, broker 5" in reason
    many = compare_positions(
        {}, {f"S{i}": Decimal(i) for i in range(1, 40)}, {f"S{i}": Decimal(i) for i in range(1, 40)}
    )
    long_reason = halt_reason("alpaca", many)
    assert len(long_reason) <= 500 and long_reason.endswith("more")
    [huge] = compare_positions({"X" * 600: Decimal(1)}, {}, {})
    assert len(halt_reason("paper", [huge])) <= 500


def test_the_request_comes_from_an_eventbridge_or_scheduler_event() -> None:
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-01-05T14:35:00Z", "detail": {}}
    request = ReconcileRequest.from_event(scheduled)
    assert request.time == datetime(2026, 1, 5, 14, 35, tzinfo=UTC) and request.tenant_id is None
    narrowed = ReconcileRequest.from_event({**scheduled, "detail": {"tenant_id": "acme", "account_id": "alpaca-1"}})
    assert (narrowed.tenant_id, narrowed.account_id) == ("acme", "alpaca-1")
    payload = ReconcileRequest.from_event({"scheduled_time": "2026-01-05T14:35:00+00:00", "tenant_id": "acme"})
    assert payload.time == request.time and payload.tenant_id == "acme"
    with pytest.raises(ValidationError, match="time"):
        ReconcileRequest.from_event({"detail": {}})
    with pytest.raises(ValidationError, match="timezone"):
        ReconcileRequest.from_event({"time": "2026-01-05T14:35:00"})
