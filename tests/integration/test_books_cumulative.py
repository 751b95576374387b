"""Fills reported as running totals (Alpaca's filled_qty/filled_avg_price, ccxt's filled/average): the
books record only the part beyond what they hold, so a REST snapshot and a stream event describing the
same executions, in either order and any number of times, are recorded once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tradeflow.brokers.port import BrokerFill, BrokerOrder
from tradeflow.domain import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.execution.accounts import open_account
from tradeflow.execution.books import Books
from tradeflow.execution.service import ExecutionService
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.positions import PositionRepository

from helpers import ACCOUNT, T0, TENANT, assert_books_consistent, dec

COID = "tf-cumulative-0001"


def account() -> None:
    """A broker account (the books' consistency check then does not compare with the paper broker)."""
    open_account(TENANT, ACCOUNT, Decimal(100_000), T0 - timedelta(days=1), broker="alpaca", mode="paper")


def _order(quantity: str = "10") -> Order:
    order = Order(
        tenant_id=TENANT,
        account_id=ACCOUNT,
        client_order_id=COID,
        broker="alpaca",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=dec(quantity),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        created_at=T0,
        updated_at=T0,
    )
    assert Books().orders.create(order)
    return order


def _running(cumulative: str, average: str, minutes: int = 1, fee: str = "0") -> BrokerFill:
    return BrokerFill(
        ref=f"B-1@{cumulative}",
        quantity=dec(cumulative),
        price=dec(average),
        fee=dec(fee),
        ts=T0 + timedelta(minutes=minutes),
        cumulative_quantity=dec(cumulative),
        cumulative_average=dec(average),
    )


def _fills() -> list[tuple[Decimal, Decimal]]:
    return sorted((f.quantity, f.price) for f in FillRepository().list(TENANT, ACCOUNT))


def test_running_totals_record_each_increment_at_the_price_that_keeps_the_brokers_average(aws: object) -> None:
    account()
    books = Books()
    order = _order()
    first = books.apply_fill(order, _running("6", "99"), "test")
    assert first is not None and first.fill.quantity == 6 and first.fill.price == 99
    second = books.apply_fill(order, _running("10", "100", minutes=2), "test")
    assert second is not None
    assert second.fill.quantity == 4 and second.fill.price == Decimal("101.5")  # (10x100 - 6x99) / 4
    stored = books.orders.get(TENANT, COID)
    assert stored is not None
    assert stored.status is OrderStatus.FILLED and stored.average_fill_price == 100
    assert _fills() == [(4, Decimal("101.5")), (6, 99)]
    assert_books_consistent()


def test_an_older_running_total_or_a_repeat_records_nothing(aws: object) -> None:
    account()
    books = Books()
    order = _order()
    assert books.apply_fill(order, _running("10", "100"), "test") is not None  # the REST snapshot first
    assert books.apply_fill(order, _running("6", "99"), "test") is None  # then the stream's partial fill
    assert books.apply_fill(order, _running("10", "100"), "test") is None  # and the final one again
    assert _fills() == [(10, 100)]
    position = PositionRepository().get(TENANT, ACCOUNT, "GOOG")
    assert position.quantity == 10
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None and acct.cash == Decimal(100_000) - 1000
    assert_books_consistent()


def test_fees_reported_as_running_totals_are_charged_once(aws: object) -> None:
    account()
    books = Books()
    order = _order()
    books.apply_fill(order, _running("4", "100", fee="0.4"), "test")
    books.apply_fill(order, _running("10", "100", minutes=2, fee="1.0"), "test")
    stored = books.orders.get(TENANT, COID)
    assert stored is not None and stored.fees == Decimal("1.0")
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None and acct.cash == Decimal(100_000) - 1000 - Decimal("1.0")
    assert_books_consistent()


def test_a_broker_update_with_a_running_total_fills_the_order_through_the_service(aws: object) -> None:
    from tradeflow.brokers.factory import broker_for

    account()
    _order()
    update = BrokerOrder(
        client_order_id=COID,
        broker_order_id="B-1",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=dec("10"),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.FILLED,
        filled_quantity=dec("10"),
        fills=[_running("10", "100.25")],
        submitted_at=T0,
        updated_at=T0 + timedelta(minutes=1),
    )
    service = ExecutionService(broker_for)
    result = service.apply_update(TENANT, ACCOUNT, update)
    assert result.order is not None and result.order.status is OrderStatus.FILLED
    again = service.apply_update(TENANT, ACCOUNT, update)
    assert again.fills == []
    assert _fills() == [(10, Decimal("100.25"))]
    assert_books_consistent()


def test_a_stale_report_after_a_partial_fill_never_moves_the_order_backwards(aws: object) -> None:
    from tradeflow.brokers.factory import broker_for

    account()
    _order()

    def report(status: OrderStatus, fills: list[BrokerFill], filled: str) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=COID,
            broker_order_id="B-1",
            symbol="GOOG",
            side=OrderSide.BUY,
            quantity=dec("10"),
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.DAY,
            status=status,
            filled_quantity=dec(filled),
            fills=fills,
            submitted_at=T0,
            updated_at=T0 + timedelta(minutes=1),
        )

    service = ExecutionService(broker_for)
    service.apply_update(TENANT, ACCOUNT, report(OrderStatus.PARTIALLY_FILLED, [_running("4", "100")], "4"))
    late = service.apply_update(TENANT, ACCOUNT, report(OrderStatus.ACCEPTED, [], "0"))  # the stream's `new`
    assert late.order is not None and late.order.status is OrderStatus.PARTIALLY_FILLED
    assert late.order.filled_quantity == 4
    assert_books_consistent()


def test_an_order_the_broker_accepted_rounded_down_ends_filled_with_what_was_filled(aws: object) -> None:
    from tradeflow.brokers.factory import broker_for

    account()
    _order("10.000037")  # e.g. a crypto amount the exchange rounded down to its step
    rounded = BrokerOrder(
        client_order_id=COID,
        broker_order_id="B-1",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=dec("10"),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        status=OrderStatus.FILLED,
        filled_quantity=dec("10"),
        fills=[_running("10", "100")],
        submitted_at=T0,
        updated_at=T0 + timedelta(minutes=1),
    )
    result = ExecutionService(broker_for).apply_update(TENANT, ACCOUNT, rounded)
    assert result.order is not None and result.order.status is OrderStatus.FILLED
    assert result.order.filled_quantity == 10 and "filled 10 of 10.000037" in (result.order.reject_reason or "")
    assert_books_consistent()
