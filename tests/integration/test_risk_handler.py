"""The risk function on moto, driven with real SQS messages: a signal becomes exactly one approved
intent (with its exposure reserved) or one recorded rejection; poison is dead-lettered without
blocking its batch; transient failures are retried and, on the last delivery, recorded as the
signal's dead-lettered outcome; concurrent decisions cannot jointly breach an account limit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.catalogue import QUEUES
from tradeflow.domain import (
    ControlScope,
    OrderIntent,
    RiskProfile,
    Signal,
    SignalOutcome,
    SizingMethod,
    SizingRule,
    TradingControl,
)
from tradeflow.domain.accounts import PendingExposure
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.domain.ids import client_order_id
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.risk import engine
from tradeflow.risk.service import RiskService
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.controls import ControlRepository
from tradeflow.storage.signals import SignalRepository

from helpers import (
    ACCOUNT,
    DEPLOYMENT,
    T0,
    TENANT,
    Context,
    account,
    as_sqs_event,
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

SYMBOLS = ("GOOG", "AAPL", "MSFT")
TEN = RiskProfile(sizing=SizingRule(method=SizingMethod.FIXED_QUANTITY, quantity=Decimal(10)))


@pytest.fixture
def desk(aws: object) -> None:
    account()
    deployment(symbols=SYMBOLS, risk=TEN)


def decide(*signals: Signal) -> dict[str, Any]:
    """Emit the signals as the strategy function does and deliver what the queue holds to risk."""
    for s in signals:
        emit(s)
    messages = receive("signals")
    assert len(messages) == len(signals)
    return deliver("risk", "signals", messages)


def outcome(signal: Signal) -> Any:
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None
    return record


def pending() -> dict[str, PendingExposure]:
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None
    return acct.pending


def audit_actions(subject: str) -> list[str]:
    return [e.action for e in AuditRepository().list(TENANT) if e.subject == subject]


def control(scope: ControlScope, tenant: str = TENANT, target: str = "*", active: bool = True) -> None:
    ControlRepository().put(
        TradingControl(tenant_id=tenant, scope=scope, target=target, active=active, reason="ops said so", updated_at=T0)
    )


# -- approval --------------------------------------------------------------------------------------


def test_an_approved_signal_queues_one_intent_and_reserves_its_exposure(desk: None) -> None:
    sig = make_signal("GOOG", "buy", Decimal("150.5"))

    result = decide(sig)

    assert result == {"batchItemFailures": []}
    [message] = receive("orders")
    intent = OrderIntent.model_validate_json(message["Body"])
    coid = client_order_id(sig.signal_id)
    assert message["Attributes"]["MessageDeduplicationId"] == coid
    assert message["Attributes"]["MessageGroupId"] == f"{TENANT}#{ACCOUNT}#GOOG"
    assert (intent.client_order_id, intent.signal_id, intent.side.value, intent.quantity) == (
        coid,
        sig.signal_id,
        "buy",
        Decimal(10),
    )
    assert intent.decided_at == sig.generated_at
    assert intent.reserved_notional == Decimal("1505.0") and intent.opens

    record = outcome(sig)
    assert record.outcome is SignalOutcome.APPROVED
    assert record.client_order_id == coid
    assert record.intent is not None and OrderIntent.model_validate(record.intent) == intent
    assert pending() == {"GOOG": PendingExposure(quantity=Decimal(10), notional=Decimal("1505.0"), opens=1)}
    assert audit_actions(sig.signal_id) == ["signal.approved"]


def test_dying_between_the_commit_and_the_send_resends_the_same_intent(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: RiskService = handler_globals("risk")["service"]
    monkeypatch.setattr(service.queue, "send", flaky(1, service.queue.send, "sqs"))
    sig = make_signal("GOOG", "buy")

    first = decide(sig)  # the reservation commits, then sending the intent fails

    assert len(failed_ids(first)) == 1
    assert outcome(sig).outcome is SignalOutcome.APPROVED
    assert receive("orders") == []
    [redelivery] = receive("signals")

    assert deliver("risk", "signals", [redelivery]) == {"batchItemFailures": []}

    [message] = receive("orders")
    assert OrderIntent.model_validate_json(message["Body"]) == OrderIntent.model_validate(outcome(sig).intent)
    assert pending()["GOOG"] == PendingExposure(quantity=Decimal(10), notional=Decimal(1000), opens=1)  # once
    assert audit_actions(sig.signal_id) == ["signal.approved"]


def test_a_duplicate_delivery_of_an_approved_signal_queues_one_intent(desk: None) -> None:
    sig = make_signal("GOOG", "buy")
    decide(sig)

    again = handler("risk")({"Records": [_record(sig, "m-again")]}, Context())

    assert again == {"batchItemFailures": []}
    assert len(receive("orders")) == 1  # re-sent with the same dedup id: still one intent
    assert pending()["GOOG"].quantity == Decimal(10)
    assert audit_actions(sig.signal_id) == ["signal.approved"]


# -- rejections ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "tenant", "target", "expected"),
    [
        (ControlScope.GLOBAL_HALT, GLOBAL_TENANT, "*", "trading control global_halt is active: ops said so"),
        (ControlScope.KILL_SWITCH, TENANT, "*", "trading control kill_switch is active: ops said so"),
        (ControlScope.TENANT_DISABLED, TENANT, "*", "trading control tenant_disabled is active: ops said so"),
        (ControlScope.DEPLOYMENT_PAUSED, TENANT, DEPLOYMENT, "trading control deployment_paused is active"),
    ],
)
def test_an_active_control_rejects_with_its_reason(
    desk: None, scope: ControlScope, tenant: str, target: str, expected: str
) -> None:
    control(scope, tenant, target)
    sig = make_signal("GOOG", "buy")

    assert decide(sig) == {"batchItemFailures": []}

    record = outcome(sig)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason is not None and record.reason.startswith(expected)
    assert receive("orders") == []
    assert pending() == {}
    assert audit_actions(sig.signal_id) == ["signal.rejected"]
    [event] = [e for e in AuditRepository().list(TENANT) if e.subject == sig.signal_id]
    assert event.details == {"reason": record.reason}


@pytest.mark.parametrize(
    ("scope", "tenant", "target", "active"),
    [
        (ControlScope.GLOBAL_HALT, "other-tenant", "*", True),  # a "global halt" only counts under _global
        (ControlScope.KILL_SWITCH, "other-tenant", "*", True),  # tenants are walls
        (ControlScope.DEPLOYMENT_PAUSED, TENANT, "another-deployment", True),
        (ControlScope.KILL_SWITCH, TENANT, "*", False),  # switched off
    ],
)
def test_a_control_that_does_not_apply_does_not_stop_trading(
    desk: None, scope: ControlScope, tenant: str, target: str, active: bool
) -> None:
    control(scope, tenant, target, active)
    sig = make_signal("GOOG", "buy")

    decide(sig)

    assert outcome(sig).outcome is SignalOutcome.APPROVED
    assert len(receive("orders")) == 1


def test_the_daily_loss_limit_rejects_new_positions(aws: object) -> None:
    account()
    deployment(symbols=SYMBOLS, risk=TEN.model_copy(update={"daily_loss_limit": Decimal(500)}))
    repo = AccountRepository()
    acct = repo.get(TENANT, ACCOUNT)
    assert acct is not None
    day = T0.date().isoformat()
    repo.table.put(repo.item(acct.model_copy(update={"trading_day": day, "day_realized_pnl": Decimal(-500)})))
    sig = make_signal("GOOG", "buy")

    decide(sig)

    record = outcome(sig)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason is not None and record.reason.startswith("daily loss limit 500 reached")
    assert receive("orders") == []
    assert audit_actions(sig.signal_id) == ["signal.rejected"]


def test_yesterdays_losses_do_not_count_against_today(aws: object) -> None:
    account()
    deployment(symbols=SYMBOLS, risk=TEN.model_copy(update={"daily_loss_limit": Decimal(500)}))
    repo = AccountRepository()
    acct = repo.get(TENANT, ACCOUNT)
    assert acct is not None
    yesterday = (T0 - timedelta(days=1)).date().isoformat()
    repo.table.put(repo.item(acct.model_copy(update={"trading_day": yesterday, "day_realized_pnl": Decimal(-900)})))
    sig = make_signal("GOOG", "buy")

    decide(sig)

    assert outcome(sig).outcome is SignalOutcome.APPROVED


def test_a_second_buy_while_the_first_is_in_flight_is_rejected_as_already_long(desk: None) -> None:
    first = make_signal("GOOG", "buy", at=T0)
    second = make_signal("GOOG", "buy", at=T0 + timedelta(minutes=5))
    decide(first)
    decide(second)

    assert outcome(first).outcome is SignalOutcome.APPROVED
    record = outcome(second)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason == "already long 10 GOOG"
    assert len(receive("orders")) == 1
    assert pending()["GOOG"].quantity == Decimal(10)
    assert audit_actions(second.signal_id) == ["signal.rejected"]


def test_a_sell_with_nothing_to_sell_is_rejected(desk: None) -> None:
    sig = make_signal("GOOG", "sell")

    decide(sig)

    record = outcome(sig)
    assert record.outcome is SignalOutcome.REJECTED
    assert record.reason == "no long position in GOOG to close and short selling is not allowed"
    assert receive("orders") == []
    assert audit_actions(sig.signal_id) == ["signal.rejected"]


def test_a_signal_for_an_unknown_deployment_is_rejected(desk: None) -> None:
    sig = make_signal("GOOG", "buy", dep="ghost")

    decide(sig)

    record = outcome(sig)
    assert record.outcome is SignalOutcome.REJECTED and record.reason == "unknown deployment ghost"


# -- poison and transient failures -----------------------------------------------------------------


def _record(sig: Signal, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    event = as_sqs_event("signals", [fake_message(sig.model_dump_json(), sig.group_id, message_id, receive_count)])
    record: dict[str, Any] = event["Records"][0]
    return record


def _poison(body: Any, message_id: str, group: str) -> dict[str, Any]:
    record: dict[str, Any] = as_sqs_event("signals", [fake_message(body, group, message_id)])["Records"][0]
    return record


def test_poison_is_dead_lettered_with_its_reason_and_the_good_messages_succeed(desk: None) -> None:
    good_goog = make_signal("GOOG", "buy")
    good_aapl = make_signal("AAPL", "buy")
    valid = good_goog.model_dump(mode="json")
    missing = {k: v for k, v in valid.items() if k != "symbol"}
    wrong_type = {**valid, "signal_id": "sig_wrongtype000", "price": "a lot"}
    naive = {**valid, "signal_id": "sig_naivetime000", "generated_at": "2026-01-05T14:30:00"}
    for s in (good_goog, good_aapl):
        SignalRepository().record_new(s)
    records = [
        _poison("{not json", "p-1", f"{TENANT}#{ACCOUNT}#BAD1"),
        _record(good_goog, "g-1"),
        _poison(missing, "p-2", f"{TENANT}#{ACCOUNT}#BAD2"),
        _poison(wrong_type, "p-3", f"{TENANT}#{ACCOUNT}#BAD3"),
        _record(good_aapl, "g-2"),
        _poison(naive, "p-4", f"{TENANT}#{ACCOUNT}#BAD4"),
        _poison([1, 2, 3], "p-5", f"{TENANT}#{ACCOUNT}#BAD5"),
    ]

    result = handler("risk")({"Records": records}, Context())

    assert result == {"batchItemFailures": []}
    assert outcome(good_goog).outcome is SignalOutcome.APPROVED
    assert outcome(good_aapl).outcome is SignalOutcome.APPROVED
    assert len(receive("orders")) == 2
    dead = {m["Body"]: reason_of(m) for m in receive("signals", dlq=True)}
    assert len(dead) == 5
    assert "invalid signals message" in dead["{not json"]
    assert "symbol: Field required" in dead[records[2]["body"]]
    assert "price:" in dead[records[3]["body"]]
    assert "generated_at:" in dead[records[5]["body"]]
    assert dead["[1, 2, 3]"].startswith("invalid signals message")
    # nothing was journaled for the poison
    assert {r.signal_id for r in SignalRepository().list(TENANT)} == {good_goog.signal_id, good_aapl.signal_id}


def test_poison_keeps_its_group_on_the_dead_letter_queue(desk: None) -> None:
    result = handler("risk")({"Records": [_poison("{", "p-1", "acme#paper-1#ZZZ")]}, Context())

    assert result == {"batchItemFailures": []}
    [dead] = receive("signals", dlq=True)
    assert dead["Attributes"]["MessageGroupId"] == "acme#paper-1#ZZZ"


def flaky(times: int, original: Callable[..., Any], service: str = "dynamodb") -> Callable[..., Any]:
    """`original`, failing the first `times` calls as an unreachable AWS service would."""
    calls = {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionError(f"{service} unreachable")
        return original(*args, **kwargs)

    return wrapped


def test_a_transient_failure_is_retried_without_blocking_other_groups(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: RiskService = handler_globals("risk")["service"]
    failing, other = make_signal("GOOG", "buy"), make_signal("AAPL", "buy")
    calls: list[str] = []
    original = service.positions.list

    def positions(tenant: str, account_id: str) -> Any:
        calls.append(tenant)
        if len(calls) == 1:
            raise ConnectionError("dynamodb unreachable")
        return original(tenant, account_id)

    monkeypatch.setattr(service.positions, "list", positions)
    for s in (failing, other):
        emit(s)
    batch = receive("signals")
    ids = {Signal.model_validate_json(m["Body"]).symbol: m["MessageId"] for m in batch}

    result = deliver("risk", "signals", batch)

    assert failed_ids(result) == [ids["GOOG"]]
    record = outcome(failing)
    assert record.outcome is SignalOutcome.PENDING
    assert record.last_error == "ConnectionError: dynamodb unreachable"
    assert outcome(other).outcome is SignalOutcome.APPROVED
    assert pending().keys() == {"AAPL"}

    [redelivered] = receive("signals")  # visible again
    assert redelivered["Attributes"]["ApproximateReceiveCount"] == "2"
    assert deliver("risk", "signals", [redelivered]) == {"batchItemFailures": []}
    assert outcome(failing).outcome is SignalOutcome.APPROVED
    assert pending().keys() == {"GOOG", "AAPL"}
    assert len(receive("orders")) == 2


def test_a_single_failing_record_is_reported_not_raised(desk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose every record failed is still a partial batch response (not an invocation error
    that would page on Lambda's Errors alarm for a routine retry)."""
    service: RiskService = handler_globals("risk")["service"]
    monkeypatch.setattr(service.positions, "list", flaky(1, service.positions.list))
    sig = make_signal("GOOG", "buy")
    emit(sig)
    [message] = receive("signals")

    result = deliver("risk", "signals", [message])

    assert failed_ids(result) == [message["MessageId"]]
    assert outcome(sig).last_error == "ConnectionError: dynamodb unreachable"


def test_the_last_delivery_records_the_dead_lettered_outcome(desk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    service: RiskService = handler_globals("risk")["service"]
    monkeypatch.setattr(service.positions, "list", flaky(100, service.positions.list))
    sig = make_signal("GOOG", "buy")
    SignalRepository().record_new(sig)
    final = QUEUES["signals"].max_receive_count

    early = handler("risk")({"Records": [_record(sig, "m-1", receive_count=final - 1)]}, Context())
    assert failed_ids(early) == ["m-1"]
    assert outcome(sig).outcome is SignalOutcome.PENDING

    last = handler("risk")({"Records": [_record(sig, "m-1", receive_count=final)]}, Context())

    assert failed_ids(last) == ["m-1"]  # SQS redrives it to the DLQ after this delivery
    record = outcome(sig)
    assert record.outcome is SignalOutcome.DEAD_LETTERED
    assert record.reason == "ConnectionError: dynamodb unreachable"
    assert pending() == {}
    assert receive("orders") == []


def test_a_dead_lettered_signal_stays_dead_lettered(desk: None) -> None:
    sig = make_signal("GOOG", "buy")
    SignalRepository().record_new(sig)
    SignalRepository().set_outcome(TENANT, sig.signal_id, SignalOutcome.DEAD_LETTERED, T0, reason="gave up")

    assert handler("risk")({"Records": [_record(sig, "m-late")]}, Context()) == {"batchItemFailures": []}

    record = outcome(sig)
    assert record.outcome is SignalOutcome.DEAD_LETTERED and record.reason == "gave up"
    assert receive("orders") == []
    assert pending() == {}


def test_dead_lettering_an_approved_signal_releases_its_reservation(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: RiskService = handler_globals("risk")["service"]
    monkeypatch.setattr(service.queue, "send", flaky(100, service.queue.send, "sqs"))
    sig = make_signal("GOOG", "buy")
    SignalRepository().record_new(sig)
    last = QUEUES["signals"].max_receive_count
    for count in range(1, last + 1):
        handler("risk")({"Records": [_record(sig, "m-1", receive_count=count)]}, Context())

    record = outcome(sig)
    assert record.outcome is SignalOutcome.DEAD_LETTERED
    assert record.reason == "ConnectionError: sqs unreachable"
    assert receive("orders") == []
    assert pending() == {}  # the intent was never sent: its reservation is given back
    acct = AccountRepository().get(TENANT, ACCOUNT)
    assert acct is not None and acct.cash == Decimal(100_000)

    sell = make_signal("GOOG", "sell", at=T0 + timedelta(minutes=5))
    decide(sell)
    assert outcome(sell).outcome is SignalOutcome.REJECTED  # nothing is held, nothing to sell


def test_the_last_delivery_does_not_dead_letter_a_signal_execution_already_owns(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: RiskService = handler_globals("risk")["service"]
    sig = make_signal("GOOG", "buy")
    SignalRepository().record_new(sig)
    SignalRepository().set_outcome(TENANT, sig.signal_id, SignalOutcome.ORDERED, T0, reason="order accepted")
    monkeypatch.setattr(service.signals, "get", flaky(1, service.signals.get))
    last = QUEUES["signals"].max_receive_count

    result = handler("risk")({"Records": [_record(sig, "m-1", receive_count=last)]}, Context())

    assert failed_ids(result) == ["m-1"]
    assert outcome(sig).outcome is SignalOutcome.ORDERED  # the order's fill will decide its outcome


# -- concurrency -----------------------------------------------------------------------------------


@pytest.fixture
def lockstep(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Barrier]:
    """Make the first decision of each of two threads wait for the other's: both decide on the same
    reading of the account before either commits, the race the `risk_seq` condition must settle."""
    barrier = threading.Barrier(2, timeout=10)
    seen = threading.local()
    decide_ = engine.decide

    def in_lockstep(*args: Any, **kwargs: Any) -> Any:
        decision = decide_(*args, **kwargs)
        if not getattr(seen, "waited", False):
            seen.waited = True
            barrier.wait()
        return decision

    monkeypatch.setattr("tradeflow.risk.service.decide", in_lockstep)  # the name the service calls
    yield barrier


def race(*signals: Signal) -> list[Any]:
    results: list[Any] = [None] * len(signals)
    errors: list[BaseException] = []

    def run(i: int, sig: Signal) -> None:
        try:
            emit_journal_only(sig)
            results[i] = RiskService(SqsQueues()).assess(sig)  # one "Lambda instance" per thread
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(signals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


def emit_journal_only(sig: Signal) -> None:
    SignalRepository().record_new(sig)


@pytest.mark.parametrize(
    "limit",
    [
        {"max_open_positions": 1},
        {"max_gross_exposure": Decimal(1000)},  # room for one 10 x 100 position, not two
    ],
    ids=["max_open_positions", "max_gross_exposure"],
)
def test_concurrent_decisions_cannot_jointly_breach_an_account_limit(
    aws: object, lockstep: threading.Barrier, limit: dict[str, Any]
) -> None:
    for round_ in range(3):
        account_id = f"race-{round_}"
        dep = f"dep-race-{round_}"
        account(account_id=account_id)
        deployment(
            deployment_id=dep, account_id=account_id, symbols=("GOOG", "AAPL"), risk=TEN.model_copy(update=limit)
        )
        goog = make_signal("GOOG", "buy", Decimal(100), dep=dep, account_id=account_id)
        aapl = make_signal("AAPL", "buy", Decimal(100), dep=dep, account_id=account_id)

        results = race(goog, aapl)

        assert sorted(r.status for r in results) == ["approved", "rejected"], [(r.status, r.reason) for r in results]
        [loser] = [r for r in results if r.status == "rejected"]
        assert loser.reason is not None
        assert "max open positions" in loser.reason or "max_gross_exposure" in loser.reason, loser.reason
        [winner] = [r for r in results if r.status == "approved"]
        acct = AccountRepository().get(TENANT, account_id)
        assert acct is not None
        assert list(acct.pending) == [winner.intent.symbol]
        assert acct.pending[winner.intent.symbol].notional == Decimal(1000)
        outcomes = sorted(r.outcome.value for r in SignalRepository().list(TENANT) if r.account_id == account_id)
        assert outcomes == ["approved", "rejected"]
