"""Design rule 4 under failure: exactly one broker order per signal, and nothing lost.

Signals go through the real risk function to the real execution function on moto, with real SQS
messages. The broker is the real paper broker, wrapped where a test needs it to misbehave (time out,
be unreachable, refuse, or outlive the function that called it). After every scenario the books must
balance: cash is the sum of the ledger, positions the signed sum of fills, each order's filled
quantity the sum of its fills, our positions the broker's, and every signal ends in one final outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.brokers.factory import broker_for
from tradeflow.brokers.paper_exchange import PaperExchange
from tradeflow.brokers.port import (
    Broker,
    BrokerAccount,
    BrokerOrder,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    RejectCode,
)
from tradeflow.catalogue import QUEUES
from tradeflow.domain import Account, Order, OrderIntent, OrderStatus, Signal, SignalOutcome
from tradeflow.execution.messages import BrokerUpdate
from tradeflow.execution.service import ExecutionService
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

from helpers import (
    ACCOUNT,
    T0,
    TENANT,
    Context,
    account,
    as_sqs_event,
    assert_books_consistent,
    bars,
    broker_order_count,
    deliver,
    deployment,
    emit,
    failed_ids,
    fake_message,
    handler,
    handler_globals,
    make_signal,
    reason_of,
    receive,
)

START = Decimal(100_000)


class Script:
    """A broker factory for ExecutionService whose brokers are the real paper broker, except that
    `submit` misbehaves as scripted, one step per call (then behaves):

    - "ok": submit normally
    - "crash_after": submit, then the function dies (the broker has the order, we never heard back)
    - "timeout_before": time out before the request reached the broker
    - "timeout_after": submit, then time out (the broker has the order)
    - "unavailable": the broker cannot be reached
    - "market_closed": the broker refuses the order
    """

    def __init__(self, *steps: str) -> None:
        self.steps = list(steps)
        self.submits = 0  # submit calls we made
        self.reached = 0  # submits that reached the real broker
        self.lookups = 0
        self.lookups_fail = False  # the broker cannot be reached for lookups either

    def __call__(self, account: Account, now: datetime) -> Broker:
        return ScriptedBroker(broker_for(account, now), self)


class ScriptedBroker:
    def __init__(self, inner: Broker, script: Script) -> None:
        self.inner = inner
        self.script = script
        self.name = inner.name

    def submit(self, order: Order) -> BrokerOrder:
        step = self.script.steps.pop(0) if self.script.steps else "ok"
        self.script.submits += 1
        if step == "timeout_before":
            raise BrokerTimeout("read timed out")
        if step == "unavailable":
            raise BrokerUnavailable("connection refused")
        if step == "market_closed":
            raise BrokerRejected(RejectCode.MARKET_CLOSED, "the market is closed")
        result = self.inner.submit(order)
        self.script.reached += 1
        if step == "crash_after":
            raise RuntimeError("Task timed out after 30.00 seconds")
        if step == "timeout_after":
            raise BrokerTimeout("read timed out")
        return result

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        self.script.lookups += 1
        if self.script.lookups_fail:
            raise BrokerUnavailable("connection refused")
        return self.inner.get_order_by_client_id(client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        return self.inner.cancel(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return self.inner.open_orders()

    def positions(self) -> list[BrokerPosition]:
        return self.inner.positions()

    def account(self) -> BrokerAccount:
        return self.inner.account()


@pytest.fixture
def use_broker(monkeypatch: pytest.MonkeyPatch) -> Callable[[Script], Script]:
    """Run the execution function's service with a scripted broker."""

    def install(script: Script) -> Script:
        monkeypatch.setitem(handler_globals("execution"), "service", ExecutionService(broker_for=script))
        return script

    return install


def desk(fill_model: str = "last_price", **config: Any) -> None:
    account(fill_model=fill_model, **config)
    deployment(symbols=("GOOG",))
    # the last bar closed at T0 at 100: what the signal was decided on and the broker's last price
    bars(TENANT, "GOOG", [99.0, 100.0], start=T0 - timedelta(minutes=2))


def approve(sig: Signal) -> dict[str, Any]:
    """The signal through the strategy's journal and the risk function; returns its intent message."""
    emit(sig)
    assert deliver("risk", "signals", receive("signals")) == {"batchItemFailures": []}
    [intent] = receive("orders")
    return intent


def execute(*messages: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler("execution")(as_sqs_event("orders", list(messages)), Context())
    return result


def order_of(sig: Signal) -> Order:
    record = SignalRepository().get(TENANT, sig.signal_id)
    assert record is not None and record.client_order_id is not None
    order = OrderRepository().get(TENANT, record.client_order_id)
    assert order is not None
    return order


def signal_record(sig: Signal) -> Any:
    record = SignalRepository().get(TENANT, sig.signal_id)
    assert record is not None
    return record


def cash() -> Decimal:
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None
    return acct.cash


def pending() -> dict[str, Any]:
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None
    return acct.pending


def fills() -> list[Any]:
    return FillRepository().list(TENANT, ACCOUNT)


def position(symbol: str = "GOOG") -> Decimal:
    return PositionRepository().get(TENANT, ACCOUNT, symbol).quantity


def audit_count(action: str) -> int:
    return sum(1 for e in AuditRepository().list(TENANT) if e.action == action)


def assert_filled_once(sig: Signal, price: Decimal = Decimal(100), quantity: Decimal = Decimal(10)) -> None:
    """One broker order, one order record, one fill, cash moved once, reservation released."""
    assert broker_order_count() == 1
    assert len(OrderRepository().list_for_account(TENANT, ACCOUNT)) == 1
    [fill] = fills()
    assert (fill.quantity, fill.price) == (quantity, price)
    order = order_of(sig)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == quantity
    assert cash() == START - quantity * price
    assert position() == quantity
    assert pending() == {}
    record = signal_record(sig)
    assert record.outcome is SignalOutcome.FILLED
    assert audit_count("fill.recorded") == 1
    assert_all_signals_final()
    assert_books_consistent()


def assert_all_signals_final() -> None:
    for record in SignalRepository().list(TENANT):
        assert record.outcome.final, (record.signal_id, record.outcome, record.reason)


# -- duplicates and crashes --------------------------------------------------------------------------


def test_a_duplicate_delivery_of_an_intent_is_one_order_one_fill(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script())
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    assert execute(intent) == {"batchItemFailures": []}
    assert execute(intent) == {"batchItemFailures": []}  # SQS delivered it again

    assert script.submits == 1
    assert_filled_once(sig)


def test_a_redelivered_intent_with_the_signal_not_yet_final_does_not_resubmit(
    aws: object, use_broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """We die after the books recorded the fill but before the journal did: the redelivery finds the
    order filled and only records the outcome."""
    desk()
    script = use_broker(Script())
    service: ExecutionService = handler_globals("execution")["service"]
    original = service.signals.set_outcome
    calls = {"n": 0}

    def dies_once(*args: Any, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("Task timed out after 30.00 seconds")
        return original(*args, **kwargs)

    monkeypatch.setattr(service.signals, "set_outcome", dies_once)
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    first = execute(intent)
    assert failed_ids(first) == [intent["MessageId"]]
    assert order_of(sig).status is OrderStatus.FILLED
    assert signal_record(sig).outcome is SignalOutcome.APPROVED

    assert execute(intent) == {"batchItemFailures": []}

    assert script.submits == 1
    assert_filled_once(sig)


def redelivered(previous: dict[str, Any]) -> dict[str, Any]:
    """The failed message, received again after its visibility timeout."""
    [message] = receive("orders")
    assert message["MessageId"] == previous["MessageId"]
    assert (
        int(message["Attributes"]["ApproximateReceiveCount"])
        == int(previous["Attributes"]["ApproximateReceiveCount"]) + 1
    )
    return message


def test_dying_after_the_broker_accepted_never_submits_twice(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script("crash_after"))
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    first = deliver("execution", "orders", [intent])

    assert failed_ids(first) == [intent["MessageId"]]
    assert order_of(sig).status is OrderStatus.NEW  # our ledger never heard back ...
    assert broker_order_count() == 1  # ... but the broker has the order (and, at last price, filled it)
    assert fills() == [] and cash() == START
    assert signal_record(sig).last_error == "RuntimeError: Task timed out after 30.00 seconds"

    again = redelivered(intent)
    assert deliver("execution", "orders", [again]) == {"batchItemFailures": []}

    assert script.submits == 1 and script.reached == 1  # found by client order id, not resubmitted
    assert script.lookups >= 1
    assert_filled_once(sig)


def test_dying_after_the_broker_accepted_a_resting_order_never_submits_twice(aws: object, use_broker: Any) -> None:
    desk(fill_model="next_open")
    script = use_broker(Script("crash_after"))
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)
    assert failed_ids(deliver("execution", "orders", [intent])) == [intent["MessageId"]]

    assert deliver("execution", "orders", [redelivered(intent)]) == {"batchItemFailures": []}

    assert script.submits == 1
    assert order_of(sig).status is OrderStatus.ACCEPTED
    assert signal_record(sig).outcome is SignalOutcome.ORDERED
    next_bar(Decimal(101))
    [update] = receive("orders")
    assert deliver("execution", "orders", [update]) == {"batchItemFailures": []}
    assert_filled_once(sig, price=Decimal(101))


def test_a_timeout_before_the_broker_got_the_order_is_retried_and_submitted_once(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script("timeout_before"))
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    first = deliver("execution", "orders", [intent])

    assert failed_ids(first) == [intent["MessageId"]]  # RetryLater: the broker does not know it yet
    assert broker_order_count() == 0
    assert order_of(sig).status is OrderStatus.NEW
    assert signal_record(sig).last_error is not None and "RetryLater" in signal_record(sig).last_error
    assert signal_record(sig).outcome is SignalOutcome.APPROVED

    assert deliver("execution", "orders", [redelivered(intent)]) == {"batchItemFailures": []}

    assert script.submits == 2 and script.reached == 1
    assert_filled_once(sig)


def test_a_timeout_after_the_broker_got_the_order_is_resolved_by_lookup(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script("timeout_after"))
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    assert deliver("execution", "orders", [intent]) == {"batchItemFailures": []}

    assert script.submits == 1 and script.reached == 1 and script.lookups == 1
    assert_filled_once(sig)


def test_an_unreachable_broker_is_retried(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script("unavailable", "unavailable"))
    sig = make_signal("GOOG", "buy")
    message = approve(sig)

    for _ in range(2):
        assert failed_ids(deliver("execution", "orders", [message])) == [message["MessageId"]]
        assert broker_order_count() == 0
        message = redelivered(message)
    assert "unavailable" in (signal_record(sig).last_error or "")

    assert deliver("execution", "orders", [message]) == {"batchItemFailures": []}

    assert script.submits == 3 and script.reached == 1
    assert_filled_once(sig)


def test_a_broker_that_never_answers_ends_the_signal_dead_lettered_on_the_last_delivery(
    aws: object, use_broker: Any
) -> None:
    desk()
    use_broker(Script(*["unavailable"] * 10))
    sig = make_signal("GOOG", "buy")
    approve(sig)
    intent = OrderIntent.model_validate(signal_record(sig).intent)
    last = QUEUES["orders"].max_receive_count
    message = fake_message(intent.model_dump_json(), intent.group_id, "m-last", receive_count=last)

    result = execute(message)

    assert failed_ids(result) == ["m-last"]  # and SQS redrives it to the dead-letter queue
    record = signal_record(sig)
    assert record.outcome is SignalOutcome.DEAD_LETTERED
    assert record.reason is not None and "unavailable" in record.reason
    assert broker_order_count() == 0 and fills() == []


# -- refusals ----------------------------------------------------------------------------------------


def test_insufficient_funds_at_the_broker_rejects_the_signal_and_releases_the_reservation(aws: object) -> None:
    desk(starting_cash="500")  # our ledger says 100 000; the paper broker's account holds 500
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)
    assert pending().keys() == {"GOOG"}

    assert deliver("execution", "orders", [intent]) == {"batchItemFailures": []}

    order = order_of(sig)
    assert order.status is OrderStatus.REJECTED
    record = signal_record(sig)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason is not None and "insufficient_funds" in record.reason and "500" in record.reason
    assert order.reject_reason == record.reason
    assert pending() == {}
    assert cash() == START and fills() == [] and broker_order_count() == 0
    assert audit_count("order.rejected") == 1

    assert execute(intent) == {"batchItemFailures": []}  # a duplicate delivery changes nothing
    assert audit_count("order.rejected") == 1 and pending() == {}
    assert_all_signals_final()
    assert_books_consistent()


def test_a_broker_refusal_is_final_and_never_retried(aws: object, use_broker: Any) -> None:
    desk()
    script = use_broker(Script("market_closed"))
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    assert deliver("execution", "orders", [intent]) == {"batchItemFailures": []}
    assert execute(intent) == {"batchItemFailures": []}

    assert script.submits == 1
    record = signal_record(sig)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason == "broker: market_closed: the market is closed"
    assert pending() == {}
    assert_books_consistent()


# -- broker updates (the paper exchange's fills, a broker's stream) ----------------------------------


def next_bar(open_: Decimal, at: datetime = T0) -> list[BrokerUpdate]:
    """The bar opening at `at` arrives: the paper exchange fills what rests on it."""
    [bar] = bars(TENANT, "GOOG", [float(open_)], start=at)
    return PaperExchange(SqsQueues()).on_bar(TENANT, bar)


def test_next_open_an_order_rests_then_fills_on_the_next_bar(aws: object) -> None:
    desk(fill_model="next_open")
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)

    assert deliver("execution", "orders", [intent]) == {"batchItemFailures": []}

    assert order_of(sig).status is OrderStatus.ACCEPTED
    assert signal_record(sig).outcome is SignalOutcome.ORDERED
    assert fills() == [] and cash() == START
    assert pending()["GOOG"].quantity == Decimal(10)  # still reserved while the order rests

    updates = next_bar(Decimal("101.5"))
    assert [u.order.status for u in updates] == [OrderStatus.FILLED]
    [message] = receive("orders")
    assert message["Attributes"]["MessageGroupId"] == f"{TENANT}#{ACCOUNT}#GOOG"
    assert deliver("execution", "orders", [message]) == {"batchItemFailures": []}

    assert_filled_once(sig, price=Decimal("101.5"))
    [fill] = fills()
    assert fill.ts == T0
    assert PositionRepository().get(TENANT, ACCOUNT, "GOOG").average_price == Decimal("101.5")


def test_a_broker_update_delivered_twice_records_the_fill_once(aws: object) -> None:
    desk(fill_model="next_open")
    sig = make_signal("GOOG", "buy")
    assert deliver("execution", "orders", [approve(sig)]) == {"batchItemFailures": []}
    next_bar(Decimal(101))
    [update] = receive("orders")

    assert execute(update) == {"batchItemFailures": []}
    assert execute(update) == {"batchItemFailures": []}

    assert_filled_once(sig, price=Decimal(101))


def test_a_broker_update_before_its_intent_is_retried_until_the_order_is_known(aws: object) -> None:
    """The broker reports an order our ledger has not recorded yet (its intent is still in flight):
    the report is retried, not dropped; the intent then finds the order at the broker
    (duplicate client order id) instead of placing a second one; the retried report adds nothing."""
    desk(fill_model="next_open")
    sig = make_signal("GOOG", "buy")
    approve(sig)
    intent = OrderIntent.model_validate(signal_record(sig).intent)
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None
    early = Order(
        **intent.model_dump(
            include={
                "tenant_id",
                "account_id",
                "client_order_id",
                "signal_id",
                "deployment_id",
                "symbol",
                "side",
                "quantity",
                "order_type",
                "time_in_force",
            }
        ),
        created_at=intent.decided_at,
        updated_at=intent.decided_at,
    )
    broker_for(acct, intent.decided_at).submit(early)
    [update] = next_bar(Decimal(101))
    update_message = fake_message(update.model_dump_json(), update.group_id, "m-update")
    intent_message = fake_message(intent.model_dump_json(), intent.group_id, "m-intent")

    assert failed_ids(execute(update_message)) == ["m-update"]  # RetryLater: unknown order
    assert OrderRepository().get(TENANT, intent.client_order_id) is None
    assert fills() == []

    assert execute(intent_message) == {"batchItemFailures": []}
    assert execute(update_message) == {"batchItemFailures": []}

    assert_filled_once(sig, price=Decimal(101))


def test_a_round_trip_realizes_the_pnl_and_the_books_balance(aws: object) -> None:
    desk()
    buy = make_signal("GOOG", "buy", Decimal(100), at=T0)
    assert deliver("execution", "orders", [approve(buy)]) == {"batchItemFailures": []}
    bars(TENANT, "GOOG", [104.0], start=T0 + timedelta(minutes=4))
    sell = make_signal("GOOG", "sell", Decimal(104), at=T0 + timedelta(minutes=5))
    message = approve(sell)
    assert deliver("execution", "orders", [message]) == {"batchItemFailures": []}
    assert execute(message) == {"batchItemFailures": []}

    assert signal_record(sell).outcome is SignalOutcome.FILLED
    assert position() == 0
    assert cash() == START + Decimal(40)
    assert PositionRepository().get(TENANT, ACCOUNT, "GOOG").realized_pnl == Decimal(40)
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None and acct.day_realized_pnl == Decimal(40) and acct.pending == {}
    assert len(fills()) == 2 and broker_order_count() == 2
    assert_all_signals_final()
    assert_books_consistent()


# -- poison ------------------------------------------------------------------------------------------


def test_a_poison_orders_message_is_dead_lettered_and_does_not_block_the_batch(aws: object) -> None:
    desk()
    sig = make_signal("GOOG", "buy")
    intent = approve(sig)
    poison = [
        fake_message("{not json", f"{TENANT}#{ACCOUNT}#BAD1", "p-1"),
        fake_message({"kind": "order_intent", "tenant_id": TENANT}, f"{TENANT}#{ACCOUNT}#BAD2", "p-2"),
        fake_message({"kind": "mystery"}, f"{TENANT}#{ACCOUNT}#BAD3", "p-3"),
    ]

    assert execute(poison[0], intent, poison[1], poison[2]) == {"batchItemFailures": []}

    assert_filled_once(sig)
    dead = {m["Body"]: reason_of(m) for m in receive("orders", dlq=True)}
    assert len(dead) == 3
    assert all(r.startswith("invalid orders message") for r in dead.values())
    assert "client_order_id" in dead[poison[1]["Body"]]
    assert "kind" in dead[poison[2]["Body"]] or "discriminator" in dead[poison[2]["Body"]]


def test_a_dead_lettered_intent_gives_back_its_reservation(aws: object, use_broker: Any) -> None:
    desk()
    use_broker(Script(*["unavailable"] * 10))
    sig = make_signal("GOOG", "buy")
    approve(sig)
    intent = OrderIntent.model_validate(signal_record(sig).intent)
    for count in range(1, QUEUES["orders"].max_receive_count + 1):
        execute(fake_message(intent.model_dump_json(), intent.group_id, "m-1", receive_count=count))
    assert signal_record(sig).outcome is SignalOutcome.DEAD_LETTERED
    assert broker_order_count() == 0

    sell = make_signal("GOOG", "sell", at=T0 + timedelta(minutes=5))
    emit(sell)
    deliver("risk", "signals", receive("signals"))

    assert signal_record(sell).outcome is SignalOutcome.REJECTED  # nothing is held
    assert pending() == {}
    assert order_of(sig).status is OrderStatus.REJECTED
    assert (order_of(sig).reject_reason or "").startswith("never reached the broker: RetryLater")
    assert_all_signals_final()
    assert_books_consistent()


def test_a_dead_lettered_intent_the_broker_cannot_be_asked_about_keeps_its_reservation(
    aws: object, use_broker: Any
) -> None:
    """The order may exist at the broker: releasing its exposure could let risk over-commit, so it
    stays reserved (and the order open) for the broker's updates or an operator to settle."""
    desk()
    script = use_broker(Script("timeout_before"))
    sig = make_signal("GOOG", "buy")
    approve(sig)
    intent = OrderIntent.model_validate(signal_record(sig).intent)
    script.lookups_fail = True
    last = QUEUES["orders"].max_receive_count

    result = execute(fake_message(intent.model_dump_json(), intent.group_id, "m-1", receive_count=last))

    assert failed_ids(result) == ["m-1"]
    assert signal_record(sig).outcome is SignalOutcome.DEAD_LETTERED
    assert order_of(sig).status is OrderStatus.NEW
    assert pending()["GOOG"].quantity == Decimal(10)
