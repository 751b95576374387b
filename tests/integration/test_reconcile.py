"""Reconciliation on moto: the books compared with the broker, repaired through the execution ledger
path, or the account halted.

Paper accounts are reconciled against the real paper broker, with orders placed through the real risk
and execution functions. Situations the paper broker cannot produce (a broker that reports fills as
running totals, one that is unreachable, one that forgets or invents orders, a new broker account's
opening balance) use `HeldBroker`, an in-memory broker account behind the Broker port, injected through
the reconciler's broker factory like the execution service's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.accounts.halts import CREDENTIALS_PREFIX, account_halt, halt_account
from tradeflow.brokers.factory import broker_for
from tradeflow.brokers.port import (
    Broker,
    BrokerAccount,
    BrokerAuthFailed,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    BrokerRejected,
    BrokerUnavailable,
    RejectCode,
)
from tradeflow.domain import Account, Order, OrderIntent, OrderSide, OrderStatus, OrderType, SignalOutcome, TimeInForce
from tradeflow.domain.orders import OrderTerms
from tradeflow.execution.messages import BrokerUpdate
from tradeflow.execution.service import ExecutionService
from tradeflow.local.demo import DEMO_ACCOUNT, DEMO_TENANT, demo_feeds, seed_demo
from tradeflow.local.lambdas import repo_root
from tradeflow.local.replay import MarketReplay
from tradeflow.manual.service import ManualOrderService, PlaceRequest
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.reconcile.marks import ReconcileMarks
from tradeflow.reconcile.models import AccountReport, RunStatus
from tradeflow.reconcile.service import Reconciler
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

from helpers import (
    ACCOUNT,
    T0,
    TENANT,
    Clock,
    Context,
    account,
    as_sqs_event,
    assert_books_consistent,
    bars,
    broker_order_count,
    deliver,
    deployment,
    emit,
    fake_message,
    handler,
    make_signal,
    ohlc,
    paper_broker,
    receive,
    store_bars,
)

BROKER_ACCOUNT = "alpaca-1"
BROKER_DEPLOYMENT = "dep-a"


# -- the desk: orders through the real risk and execution functions ----------------------------------


def desk(fill_model: str = "next_open", account_id: str = ACCOUNT) -> None:
    account(account_id=account_id, fill_model=fill_model)
    deployment(symbols=("GOOG",), account_id=account_id)
    bars(TENANT, "GOOG", [99.0, 100.0], start=T0 - timedelta(minutes=2))  # the last bar closed at T0: 100


def approve(*signals: Any) -> list[dict[str, Any]]:
    """Signals through the strategy's journal and the risk function; their intent messages."""
    for signal in signals:
        emit(signal)
    assert deliver("risk", "signals", receive("signals")) == {"batchItemFailures": []}
    return receive("orders")


def execute(*messages: dict[str, Any]) -> None:
    assert handler("execution")(as_sqs_event("orders", list(messages)), Context()) == {"batchItemFailures": []}


def place_manual(tif: str, limit: str, quantity: str = "5") -> str:
    """A trader's limit order through the API's service, risk and execution; its client order id."""
    terms = OrderTerms(
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(quantity),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(limit),
        time_in_force=TimeInForce(tif),
    )
    placed = ManualOrderService(SqsQueues()).place(TENANT, "trader@acme", PlaceRequest(ACCOUNT, terms), T0)
    intents = approve()
    assert len(intents) == 1
    # delivered like the event source mapping does (deleted once handled), so the next intent of the
    # same FIFO group can be received
    assert deliver("execution", "orders", intents) == {"batchItemFailures": []}
    return placed.client_order_id


def ledger_order(client_order_id: str) -> Order:
    found = OrderRepository().get(TENANT, client_order_id)
    assert found is not None
    return found


def order_of(signal: Any) -> Order:
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None and record.client_order_id is not None
    return ledger_order(record.client_order_id)


def outcome(signal: Any) -> tuple[SignalOutcome, str]:
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None
    return record.outcome, record.reason or ""


def pending(account_id: str = ACCOUNT) -> dict[str, Any]:
    found = AccountRepository().get(TENANT, account_id)
    assert found is not None
    return found.pending


def position(account_id: str = ACCOUNT, symbol: str = "GOOG") -> Decimal:
    return PositionRepository().get(TENANT, account_id, symbol).quantity


def audits(action: str) -> list[Any]:
    return [e for e in AuditRepository().list(TENANT) if e.action == action]


def reconcile(at: datetime, **narrow: str) -> list[dict[str, Any]]:
    """One scheduled run of the reconcile function (the real handler and broker factory)."""
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": at.isoformat(), "detail": narrow}
    out: dict[str, Any] = handler("reconcile")(event, Context())
    assert out["status"] == "ok", out
    accounts: list[dict[str, Any]] = out["accounts"]
    return accounts


def only(reports: list[dict[str, Any]], account_id: str = ACCOUNT) -> dict[str, Any]:
    [report] = [r for r in reports if r["account_id"] == account_id]
    return report


# -- paper accounts, against the real paper broker ---------------------------------------------------


def test_a_fill_whose_broker_update_was_lost_is_recorded_exactly_once(aws: object) -> None:
    desk("next_open")
    signal = make_signal("GOOG", "buy")
    execute(*approve(signal))
    assert order_of(signal).status is OrderStatus.ACCEPTED  # resting until the next bar
    # The next bar fills it at the paper exchange, but the broker update never reaches execution.
    [bar] = store_bars(TENANT, ohlc("GOOG", T0, "101", "102", "100", "101.5"))
    lost: list[BrokerOrder] = []
    paper_broker(fill_model="next_open", clock=Clock(T0 + timedelta(minutes=1))).match(bar, lost.append)
    assert [o.status for o in lost] == [OrderStatus.FILLED]
    assert FillRepository().list(TENANT, ACCOUNT) == []

    report = only(reconcile(T0 + timedelta(minutes=5)))

    assert (report["status"], report["kinds"], report["repaired"]) == ("ok", {"missed_fill": 1}, 1)
    [fill] = FillRepository().list(TENANT, ACCOUNT)
    assert (fill.quantity, fill.price) == (Decimal(10), Decimal(101))
    assert order_of(signal).status is OrderStatus.FILLED
    assert outcome(signal)[0] is SignalOutcome.FILLED
    assert position() == Decimal(10) and pending() == {}
    [difference] = audits("reconcile.difference")
    assert difference.details["kind"] == "missed_fill" and difference.details["symbol"] == "GOOG"
    assert difference.details["ledger"] == "accepted, 0 of 10 filled"
    assert difference.details["broker"] == "filled, 10 of 10 filled"
    assert difference.details["action"].startswith("synced from the broker: 1 fill(s) recorded, order filled")
    assert_books_consistent()

    # A second run finds nothing; the lost update arriving late records nothing either.
    again = only(reconcile(T0 + timedelta(minutes=10)))
    assert (again["status"], again["differences"], again["repaired"]) == ("ok", 0, 0)
    update = BrokerUpdate(tenant_id=TENANT, account_id=ACCOUNT, order=lost[0])
    execute(fake_message(update.model_dump_json(), update.group_id, "late-update"))
    assert len(FillRepository().list(TENANT, ACCOUNT)) == 1
    assert len(audits("fill.recorded")) == 1
    assert len(audits("reconcile.run")) == 2
    assert_books_consistent()


def test_an_order_the_broker_cancelled_is_closed_and_its_reservation_released(aws: object) -> None:
    desk("next_open")
    signal = make_signal("GOOG", "buy")
    execute(*approve(signal))
    order = order_of(signal)
    assert order.status is OrderStatus.ACCEPTED and pending() != {}
    paper_broker(fill_model="next_open").cancel(order.client_order_id)  # cancelled at the broker

    report = only(reconcile(T0 + timedelta(minutes=5)))

    assert (report["status"], report["kinds"]) == ("ok", {"closed_at_broker": 1})
    assert order_of(signal).status is OrderStatus.CANCELLED
    assert pending() == {}
    assert outcome(signal)[0] is SignalOutcome.CANCELLED
    assert_books_consistent()
    assert only(reconcile(T0 + timedelta(minutes=10)))["differences"] == 0


class DiesBeforeSubmitting:
    """The paper broker, behind an execution function that dies after recording the order and before
    calling the broker."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.name = inner.name

    def submit(self, order: Order) -> BrokerOrder:
        raise RuntimeError("Task timed out after 30.00 seconds")

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return self.inner.get_order_by_client_id(client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        return self.inner.cancel(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return self.inner.open_orders()

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        return self.inner.recent_orders(since)

    def positions(self) -> list[BrokerPosition]:
        return self.inner.positions()

    def account(self) -> BrokerAccount:
        return self.inner.account()


def test_a_new_order_that_never_reached_the_broker_is_closed_after_the_grace_period(aws: object) -> None:
    desk("last_price")
    signal = make_signal("GOOG", "buy")
    [message] = approve(signal)
    intent = OrderIntent.model_validate_json(message["Body"])
    with pytest.raises(RuntimeError, match="timed out"):
        ExecutionService(lambda acct, now: DiesBeforeSubmitting(broker_for(acct, now))).execute(intent)
    assert order_of(signal).status is OrderStatus.NEW and pending() != {}

    early = only(reconcile(T0 + timedelta(minutes=2)))  # it may still be on its way: left alone
    assert (early["status"], early["differences"]) == ("ok", 0)
    assert order_of(signal).status is OrderStatus.NEW

    report = only(reconcile(T0 + timedelta(minutes=20)))

    assert (report["status"], report["kinds"], report["repaired"]) == ("ok", {"never_submitted": 1}, 1)
    closed = order_of(signal)
    assert closed.status is OrderStatus.REJECTED and "never reached the broker" in (closed.reject_reason or "")
    assert pending() == {}
    result, reason = outcome(signal)
    assert result is SignalOutcome.REJECTED and "never reached the broker" in reason
    # The intent's redelivery finds its signal final and submits nothing.
    execute(message)
    assert broker_order_count() == 0
    assert order_of(signal).status is OrderStatus.REJECTED
    assert_books_consistent()


def test_a_day_order_of_an_earlier_day_is_cancelled_and_a_gtc_order_left_alone(aws: object) -> None:
    desk("next_open")
    day = place_manual("day", "50")
    gtc = place_manual("gtc", "51")
    assert ledger_order(day).status is ledger_order(gtc).status is OrderStatus.ACCEPTED

    later_that_day = only(reconcile(T0 + timedelta(hours=3)))
    assert (later_that_day["cancelled"], later_that_day["differences"]) == (0, 0)

    report = only(reconcile(datetime(2026, 1, 6, 0, 5, tzinfo=UTC)))

    assert (report["status"], report["kinds"], report["cancelled"]) == ("ok", {"day_order_expired": 1}, 1)
    assert ledger_order(day).status is OrderStatus.CANCELLED
    assert ledger_order(gtc).status is OrderStatus.ACCEPTED
    at_broker = paper_broker(fill_model="next_open").get_order_by_client_id(day)
    assert at_broker is not None and at_broker.status is OrderStatus.CANCELLED
    assert set(pending()) == {"GOOG"} and pending()["GOOG"].quantity == Decimal(5)  # only the GTC order's
    [difference] = audits("reconcile.difference")
    assert difference.details["kind"] == "day_order_expired"
    assert "day order of the 2026-01-05 session" in difference.details["action"]
    assert_books_consistent()


def test_an_unexplained_position_halts_the_account_and_risk_then_rejects_its_signals(aws: object) -> None:
    desk("last_price")
    # Someone buys at the broker by hand: an order that is not ours, and a position our ledger lacks.
    by_hand = Order(
        tenant_id=TENANT,
        account_id=ACCOUNT,
        client_order_id="bought-by-hand-1",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(5),
        created_at=T0,
        updated_at=T0,
    )
    assert paper_broker(fill_model="last_price").submit(by_hand).status is OrderStatus.FILLED

    report = only(reconcile(T0 + timedelta(minutes=5)))

    assert report["status"] == "halted"
    assert report["kinds"] == {"manual_order": 1, "position": 1, "cash": 1} and report["unexplained"] == 1
    assert report["cash_difference"] == "-500"
    halt = account_halt(TENANT, ACCOUNT)
    assert halt is not None and halt.set_by == "reconcile"
    assert "position GOOG: ledger 0, broker 5" in halt.reason
    assert report["reason"] == halt.reason
    [activated] = audits("control.account_halted.activated")
    assert activated.details["reason"] == halt.reason
    kinds = {e.details["kind"]: e.details for e in audits("reconcile.difference")}
    assert kinds["manual_order"]["halts"] is False and kinds["position"]["halts"] is True
    assert kinds["cash"]["ledger"] == "100000" and kinds["cash"]["broker"] == "99500"

    signal = make_signal("GOOG", "buy")
    assert approve(signal) == []
    result, reason = outcome(signal)
    assert result is SignalOutcome.REJECTED
    assert "account_halted" in reason and "position GOOG: ledger 0, broker 5" in reason

    # The next run finds the same: the halt stands, unchanged.
    assert only(reconcile(T0 + timedelta(minutes=10)))["status"] == "halted"
    assert len(audits("control.account_halted.activated")) == 1


def test_every_sample_account_reconciles_and_a_malformed_event_is_dead_lettered(aws: object) -> None:
    origin = datetime(2026, 1, 5, 14, 31, tzinfo=UTC)
    seed_demo(datetime(2026, 1, 5, 13, 0, tzinfo=UTC))
    MarketReplay(demo_feeds(), origin, warmup=40).publish_due(origin)
    event = json.loads((repo_root() / "events" / "reconcile-scheduled.json").read_text())
    out = handler("reconcile")(event, Context())
    assert out["status"] == "ok" and out["time"] == "2026-01-05T14:35:00.000000Z"
    [demo] = out["accounts"]
    assert (demo["tenant_id"], demo["account_id"], demo["status"], demo["differences"]) == (
        DEMO_TENANT,
        DEMO_ACCOUNT,
        "ok",
        0,
    )

    bad = handler("reconcile")({"detail-type": "Scheduled Event", "detail": {}}, Context())
    assert bad["status"] == "dead_lettered" and "time" in bad["reason"]
    [dead] = receive("dead_events")
    assert "time" in dead["MessageAttributes"]["reason"]["StringValue"]


# -- broker-only situations, with a broker account held in memory ------------------------------------


class HeldBroker:
    """A broker account held in memory that reports executions as running totals, as Alpaca does
    (`filled_qty` / `filled_avg_price`). What happens at the broker is driven by the test."""

    name = "alpaca"

    def __init__(self, cash: str) -> None:
        self.cash = Decimal(cash)
        self.orders: dict[str, BrokerOrder] = {}
        self.held: dict[str, Decimal] = {}
        self.now = T0
        self.unavailable = False
        self.refuses = False
        self.explodes = False  # a bug of ours, or a payload nobody expected
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.refuses:
            raise BrokerAuthFailed("forbidden", "access key verification failed")
        if self.unavailable:
            raise BrokerUnavailable("connection refused")
        if self.explodes:
            raise KeyError("filled_avg_price")

    # -- the port --

    def submit(self, order: Order) -> BrokerOrder:
        self._call()
        placed = BrokerOrder(
            client_order_id=order.client_order_id,
            broker_order_id=f"alp-{len(self.orders) + 1}",
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            status=OrderStatus.ACCEPTED,
            submitted_at=self.now,
            updated_at=self.now,
        )
        self.orders[order.client_order_id] = placed
        return placed

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        self._call()
        return self.orders.get(client_order_id)

    def cancel(self, client_order_id: str) -> BrokerOrder:
        self._call()
        found = self.orders.get(client_order_id)
        if found is None:
            raise BrokerRejected(RejectCode.REJECTED, f"order {client_order_id} not found")
        if not found.status.final:
            found = found.model_copy(update={"status": OrderStatus.CANCELLED, "updated_at": self.now})
            self.orders[client_order_id] = found
        return found

    def open_orders(self) -> list[BrokerOrder]:
        self._call()
        return [o for o in self.orders.values() if not o.status.final]

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        self._call()
        return [o for o in self.orders.values() if o.updated_at >= since or not o.status.final]

    def positions(self) -> list[BrokerPosition]:
        self._call()
        return [BrokerPosition(symbol=s, quantity=q, average_price=Decimal(0)) for s, q in self.held.items() if q]

    def account(self) -> BrokerAccount:
        self._call()
        return BrokerAccount(cash=self.cash, equity=self.cash, buying_power=self.cash)

    # -- what happens at the broker --

    def fill(self, client_order_id: str, total: str, average: str) -> BrokerOrder:
        """The order has now filled `total` in all, at `average` on average (one running total)."""
        order = self.orders[client_order_id]
        cumulative, mean = Decimal(total), Decimal(average)
        added = cumulative - order.filled_quantity
        paid = cumulative * mean - order.filled_quantity * self._average(order)
        self.held[order.symbol] = self.held.get(order.symbol, Decimal(0)) + added * order.side.sign
        self.cash -= paid * order.side.sign
        fill = BrokerFill(
            ref=f"{order.broker_order_id}@{cumulative}",
            quantity=cumulative,
            price=mean,
            ts=self.now,
            cumulative_quantity=cumulative,
            cumulative_average=mean,
        )
        status = OrderStatus.FILLED if cumulative == order.quantity else OrderStatus.PARTIALLY_FILLED
        updated = order.model_copy(
            update={"status": status, "filled_quantity": cumulative, "fills": [fill], "updated_at": self.now}
        )
        self.orders[client_order_id] = updated
        return updated

    @staticmethod
    def _average(order: BrokerOrder) -> Decimal:
        if not order.fills:
            return Decimal(0)
        return order.fills[-1].cumulative_average or Decimal(0)


def brokers(held: dict[str, HeldBroker]) -> Callable[[Account, datetime], Broker]:
    """A broker factory: the held broker of an account, the real one (paper) of any other."""

    def factory(account: Account, now: datetime) -> Broker:
        found = held.get(account.account_id)
        return found if found is not None else broker_for(account, now)

    return factory


def broker_account(account_id: str = BROKER_ACCOUNT) -> None:
    """A broker account as the API opens it: no money in our ledger, its cash is at the broker."""
    AccountRepository().create(
        Account(
            tenant_id=TENANT,
            account_id=account_id,
            broker="alpaca",
            mode="paper",
            broker_config={"paper": True},
            created_at=T0 - timedelta(days=1),
            updated_at=T0 - timedelta(days=1),
        )
    )


def run(held: HeldBroker, at: datetime) -> AccountReport:
    """One run of the reconciler over the broker account, with `held` as its broker."""
    [report] = Reconciler(brokers({BROKER_ACCOUNT: held})).run(at, TENANT, BROKER_ACCOUNT)
    return report


def trade_at_broker(held: HeldBroker) -> tuple[Any, str]:
    """A strategy's buy of 10 GOOG through risk and execution to the held broker: (signal, order id)."""
    deployment(deployment_id=BROKER_DEPLOYMENT, account_id=BROKER_ACCOUNT, symbols=("GOOG",))
    bars(TENANT, "GOOG", [99.0, 100.0], start=T0 - timedelta(minutes=2))
    signal = make_signal("GOOG", "buy", dep=BROKER_DEPLOYMENT, account_id=BROKER_ACCOUNT)
    [message] = approve(signal)
    ExecutionService(brokers({BROKER_ACCOUNT: held})).execute(OrderIntent.model_validate_json(message["Body"]))
    client_order_id = order_of(signal).client_order_id
    assert held.orders[client_order_id].status is OrderStatus.ACCEPTED
    return signal, client_order_id


def test_a_new_broker_account_gets_its_opening_balance_then_missed_running_totals_are_recorded_once(
    aws: object,
) -> None:
    broker_account()
    held = HeldBroker(cash="25000")

    opened = run(held, T0)
    assert (opened.status, opened.opening_balance, opened.kinds) == (
        RunStatus.OK,
        Decimal(25000),
        {"opening_balance": 1},
    )
    acct = AccountRepository().get(TENANT, BROKER_ACCOUNT)
    assert acct is not None and acct.cash == acct.starting_cash == Decimal(25000)
    [deposit] = LedgerRepository().list(TENANT, BROKER_ACCOUNT)
    assert (deposit.kind.value, deposit.amount) == ("deposit", Decimal(25000))
    assert run(held, T0 + timedelta(minutes=5)).differences == 0  # recorded once
    assert len(LedgerRepository().list(TENANT, BROKER_ACCOUNT)) == 1

    # Risk now sees the buying power; the order reaches the broker and fills there in two steps,
    # reported as running totals, and none of it reaches us.
    signal, client_order_id = trade_at_broker(held)
    held.now = T0 + timedelta(minutes=6)
    held.fill(client_order_id, "4", "100")
    partial = run(held, T0 + timedelta(minutes=10))
    assert (partial.status, partial.kinds) == (RunStatus.OK, {"missed_fill": 1})
    assert ledger_order(client_order_id).filled_quantity == Decimal(4)
    assert position(BROKER_ACCOUNT) == Decimal(4)

    held.now = T0 + timedelta(minutes=11)
    snapshot = held.fill(client_order_id, "10", "100.6")
    done = run(held, T0 + timedelta(minutes=15))
    assert (done.status, done.kinds, done.cash_difference) == (RunStatus.OK, {"missed_fill": 1}, None)
    order = ledger_order(client_order_id)
    assert (order.status, order.filled_quantity, order.average_fill_price) == (
        OrderStatus.FILLED,
        Decimal(10),
        Decimal("100.6"),
    )
    assert sorted((f.quantity, f.price) for f in FillRepository().list(TENANT, BROKER_ACCOUNT)) == [
        (Decimal(4), Decimal(100)),
        (Decimal(6), Decimal(101)),
    ]
    acct = AccountRepository().get(TENANT, BROKER_ACCOUNT)
    assert acct is not None and acct.cash == held.cash == Decimal("23994")
    assert outcome(signal)[0] is SignalOutcome.FILLED

    # The stream's report of the same running total, arriving late, changes nothing; nor does a rerun.
    ExecutionService(brokers({BROKER_ACCOUNT: held})).apply_update(TENANT, BROKER_ACCOUNT, snapshot)
    assert len(FillRepository().list(TENANT, BROKER_ACCOUNT)) == 2
    assert run(held, T0 + timedelta(minutes=20)).differences == 0
    assert_books_consistent(TENANT, BROKER_ACCOUNT)

    # Interest or a fee at the broker moves its cash: recorded and alerted, never a halt.
    held.cash -= Decimal("0.35")
    fee = run(held, T0 + timedelta(minutes=25))
    assert (fee.status, fee.kinds, fee.cash_difference) == (RunStatus.OK, {"cash": 1}, Decimal("-0.35"))
    assert account_halt(TENANT, BROKER_ACCOUNT) is None


def test_an_acknowledged_order_the_broker_does_not_know_halts(aws: object) -> None:
    broker_account()
    held = HeldBroker(cash="25000")
    run(held, T0)
    _, client_order_id = trade_at_broker(held)
    del held.orders[client_order_id]  # the broker lost it

    report = run(held, T0 + timedelta(minutes=5))

    assert (report.status, report.kinds) == (RunStatus.HALTED, {"unknown_to_broker": 1})
    halt = account_halt(TENANT, BROKER_ACCOUNT)
    assert halt is not None and f"unknown_to_broker {client_order_id}" in halt.reason
    assert ledger_order(client_order_id).status is OrderStatus.ACCEPTED  # nothing "repaired" on a guess


def test_an_order_with_our_id_unknown_to_the_ledger_halts(aws: object) -> None:
    broker_account()
    held = HeldBroker(cash="25000")
    run(held, T0)
    stranger = Order(
        tenant_id=TENANT,
        account_id=BROKER_ACCOUNT,
        client_order_id="tf-" + "q" * 32,
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(3),
        created_at=T0,
        updated_at=T0,
    )
    held.submit(stranger)
    held.fill(stranger.client_order_id, "3", "100")

    report = run(held, T0 + timedelta(minutes=5))

    assert report.status is RunStatus.HALTED
    assert report.kinds == {"unknown_to_ledger": 1, "position": 1, "cash": 1}
    assert report.unexplained == 2
    halt = account_halt(TENANT, BROKER_ACCOUNT)
    assert halt is not None and "unknown_to_ledger" in halt.reason and "position GOOG" in halt.reason


def test_an_unreachable_broker_skips_its_account_and_never_stops_the_others(aws: object) -> None:
    desk("next_open")
    broker_account()
    broker_account("alpaca-2")
    held, broken = HeldBroker(cash="25000"), HeldBroker(cash="1000")
    held.unavailable = True
    broken.explodes = True

    reports = {r.account_id: r for r in Reconciler(brokers({BROKER_ACCOUNT: held, "alpaca-2": broken})).run(T0)}

    skipped = reports[BROKER_ACCOUNT]
    assert skipped.status is RunStatus.SKIPPED and skipped.reason is not None
    assert "broker unreachable" in skipped.reason and "connection refused" in skipped.reason
    assert account_halt(TENANT, BROKER_ACCOUNT) is None
    assert reports[ACCOUNT].status is RunStatus.OK
    failed = reports["alpaca-2"]
    assert failed.status is RunStatus.ERROR and failed.reason == "KeyError: 'filled_avg_price'"
    assert account_halt(TENANT, "alpaca-2") is None
    [audited] = [e for e in audits("reconcile.run") if e.subject == BROKER_ACCOUNT]
    assert audited.details["status"] == "skipped" and "connection refused" in audited.details["reason"]
    [error] = [e for e in audits("reconcile.run") if e.subject == "alpaca-2"]
    assert error.details["status"] == "error"
    marks = ReconcileMarks()
    assert marks.last(TENANT, BROKER_ACCOUNT) is None  # the next run looks back as far as this one did
    assert marks.last(TENANT, ACCOUNT) == T0


def test_refused_credentials_skip_the_account_and_a_credentials_halt_is_not_called_on(aws: object) -> None:
    broker_account()
    held = HeldBroker(cash="25000")
    held.refuses = True
    refused = run(held, T0)
    assert refused.status is RunStatus.SKIPPED and "access key verification failed" in (refused.reason or "")

    halt_account(TENANT, BROKER_ACCOUNT, f"{CREDENTIALS_PREFIX} by alpaca: forbidden", actor="execution", at=T0)
    calls = held.calls
    waiting = run(held, T0 + timedelta(minutes=5))
    assert waiting.status is RunStatus.SKIPPED and "waiting for rotated credentials" in (waiting.reason or "")
    assert held.calls == calls  # the broker was not called
