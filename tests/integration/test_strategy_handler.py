"""The strategy function on moto: a scheduler event becomes exactly one recorded evaluation and, for a
buy/sell decision, one journaled signal sent once to the `signals` FIFO queue. Bad inputs are answered
without retries: a known problem is recorded as an evaluation status, a malformed event is
dead-lettered with the field named (design rule 8)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tradeflow.catalogue import QUEUES
from tradeflow.domain import DeploymentStatus, Evaluation, Signal, SignalOutcome
from tradeflow.domain.ids import signal_id
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.scheduling.deployments import DeploymentService
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.evaluations import EvaluationRepository
from tradeflow.storage.keys import evaluations_pk
from tradeflow.storage.signals import SignalRepository

from helpers import (
    ACCOUNT,
    DEPLOYMENT,
    T0,
    TENANT,
    Context,
    account,
    bars,
    deployment,
    handler,
    reason_of,
    receive,
    scheduler_event,
)

CROSS_UP = [100.0] * 21 + [110.0]  # the 5-bar SMA crosses above the 20-bar SMA on the last bar
FLAT = [100.0] * 25


def market(closes: list[float], symbol: str = "XYZ") -> Any:
    """Bars ending one minute before T0, so the last one has just closed at T0."""
    return bars(TENANT, symbol, closes, start=T0 - timedelta(minutes=len(closes)))


def run(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = handler("strategy")(event, Context())
    return out


def evaluations(symbol: str = "XYZ", dep: str = DEPLOYMENT) -> list[Evaluation]:
    """The stored evaluations, oldest first, read from the table directly."""
    items = DynamoTable("evaluations").query(evaluations_pk(TENANT, dep, symbol))
    return [Evaluation.model_validate(i) for i in items]


@pytest.fixture
def setup(aws: object) -> None:
    account()
    deployment(symbols=("XYZ", "ABC"))


def test_a_crossover_is_evaluated_journaled_and_queued_once(setup: None) -> None:
    made = market(CROSS_UP)

    out = run(scheduler_event("XYZ", T0))

    expected_id = signal_id(TENANT, DEPLOYMENT, "XYZ", made[-1].ts, "buy")
    assert out == {"status": "ok", "action": "buy", "signal_id": expected_id}
    [evaluation] = evaluations()
    assert evaluation.evaluated_at == T0
    assert evaluation.bar_time == made[-1].ts
    assert evaluation.signal_id == expected_id and evaluation.action.value == "buy"

    record = SignalRepository().get(TENANT, expected_id)
    assert record is not None
    assert record.outcome is SignalOutcome.PENDING
    assert (record.deployment_id, record.account_id, record.symbol) == (DEPLOYMENT, ACCOUNT, "XYZ")

    [message] = receive("signals")
    assert message["Attributes"]["MessageGroupId"] == f"{TENANT}#{ACCOUNT}#XYZ"
    assert message["Attributes"]["MessageDeduplicationId"] == expected_id
    body = Signal.model_validate_json(message["Body"])
    assert body.signal_id == expected_id
    assert body.generated_at == T0  # "now" is the schedule's time, not the wall clock
    assert body.price == made[-1].close


def test_the_same_event_twice_is_one_signal_one_message_one_journal_entry(setup: None) -> None:
    market(CROSS_UP)

    first = run(scheduler_event("XYZ", T0))
    second = run(scheduler_event("XYZ", T0))

    assert first["signal_id"] is not None
    assert second["signal_id"] == first["signal_id"]
    assert len(receive("signals")) == 1
    assert [r.signal_id for r in SignalRepository().list(TENANT)] == [first["signal_id"]]
    assert len(evaluations()) == 1  # keyed by the scheduled time: the retry overwrote, not added


def test_a_retried_schedule_after_risk_decided_is_not_queued_again(setup: None) -> None:
    market(CROSS_UP)
    out = run(scheduler_event("XYZ", T0))
    [message] = receive("signals")
    client("sqs").delete_message(
        QueueUrl=SqsQueues().url(QUEUES["signals"].physical_name()), ReceiptHandle=message["ReceiptHandle"]
    )
    SignalRepository().set_outcome(TENANT, out["signal_id"], SignalOutcome.REJECTED, T0, reason="test")

    again = run(scheduler_event("XYZ", T0))  # e.g. a late retry of the schedule's invocation

    assert again["signal_id"] == out["signal_id"]
    assert receive("signals") == []  # the queue no longer holds the first message: nothing was re-sent
    record = SignalRepository().get(TENANT, out["signal_id"])
    assert record is not None and record.outcome is SignalOutcome.REJECTED


def test_hold_records_the_evaluation_and_sends_nothing(setup: None) -> None:
    market(FLAT)

    out = run(scheduler_event("XYZ", T0))

    assert out == {"status": "ok", "action": "hold", "signal_id": None}
    [evaluation] = evaluations()
    assert evaluation.action.value == "hold" and evaluation.signal_id is None
    assert receive("signals") == []
    assert SignalRepository().list(TENANT) == []


def test_unknown_deployment_is_recorded_not_retried(setup: None) -> None:
    market(CROSS_UP)

    out = run(scheduler_event("XYZ", T0, dep="nope"))

    assert out["status"] == "unknown_deployment"
    [evaluation] = evaluations(dep="nope")
    assert evaluation.status == "unknown_deployment"
    assert receive("signals") == []


def test_an_evaluation_without_a_bar_reads_back(setup: None) -> None:
    run(scheduler_event("XYZ", T0, dep="nope"))

    [evaluation] = EvaluationRepository().latest(TENANT, "nope", "XYZ")
    assert evaluation.status == "unknown_deployment"


def test_symbol_not_in_deployment_is_recorded_not_retried(setup: None) -> None:
    market(CROSS_UP, symbol="QQQ")

    out = run(scheduler_event("QQQ", T0))

    assert out["status"] == "unknown_symbol"
    assert [e.status for e in evaluations("QQQ")] == ["unknown_symbol"]
    assert receive("signals") == []


def test_paused_deployment_is_recorded_not_retried(aws: object) -> None:
    account()
    dep = deployment(symbols=("XYZ",))
    DeploymentService().set_status(dep, DeploymentStatus.PAUSED, T0 - timedelta(minutes=5))
    market(CROSS_UP)

    out = run(scheduler_event("XYZ", T0))

    assert out["status"] == "inactive"
    [evaluation] = evaluations()
    assert evaluation.status == "inactive" and evaluation.reasons == {"status": "paused"}
    assert receive("signals") == []
    assert SignalRepository().list(TENANT) == []


def test_too_few_bars_is_recorded_not_retried(setup: None) -> None:
    market(CROSS_UP[-10:])

    out = run(scheduler_event("XYZ", T0))

    assert out["status"] == "insufficient_data"
    [evaluation] = evaluations()
    assert evaluation.reasons == {"bars": 10, "needed": 21}
    assert receive("signals") == []


def test_bars_exactly_three_bars_old_are_still_used(setup: None) -> None:
    made = market(CROSS_UP)

    out = run(scheduler_event("XYZ", made[-1].ts + timedelta(minutes=3)))

    assert out["status"] == "ok" and out["action"] == "buy"
    assert len(receive("signals")) == 1


def test_stale_bars_are_recorded_not_traded(setup: None) -> None:
    made = market(CROSS_UP)
    now = made[-1].ts + timedelta(minutes=3, seconds=1)

    out = run(scheduler_event("XYZ", now))

    assert out["status"] == "stale_data"
    [evaluation] = evaluations()
    assert evaluation.status == "stale_data" and evaluation.bar_time == made[-1].ts
    assert receive("signals") == []
    assert SignalRepository().list(TENANT) == []


def test_bars_after_the_scheduled_time_are_not_seen(setup: None) -> None:
    """A replayed or late schedule decides on the bars it would have seen then (design rule 6)."""
    made = market(CROSS_UP)

    out = run(scheduler_event("XYZ", made[-2].ts + timedelta(minutes=1)))

    assert out["status"] == "ok" and out["action"] == "hold"
    assert receive("signals") == []


def _well_formed() -> dict[str, Any]:
    return scheduler_event("XYZ", T0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": None}, "symbol"),
        ({"scheduled_time": "2026-01-05T14:30:00"}, "scheduled_time"),
        ({"scheduled_time": "soon"}, "scheduled_time"),
        ({"tenant_id": "acme corp!"}, "tenant_id"),
        ({"deployment_id": ""}, "deployment_id"),
    ],
)
def test_a_malformed_event_is_dead_lettered_with_the_field_named(
    setup: None, change: dict[str, Any], field: str
) -> None:
    market(CROSS_UP)
    event = {**_well_formed(), **change}
    event = {k: v for k, v in event.items() if v is not None}

    out = run(event)

    assert out["status"] == "dead_lettered"
    assert field in out["reason"]
    [dead] = receive("dead_events")
    assert field in reason_of(dead)
    assert reason_of(dead).startswith("invalid scheduler event")
    assert json.loads(dead["Body"]) == event  # the event itself is kept, for replay after a fix
    # nothing else written: no evaluation, no signal, nothing queued
    assert list(DynamoTable("evaluations").scan()) == []
    assert list(DynamoTable("signals").scan()) == []
    assert receive("signals") == []


def test_a_non_object_event_is_dead_lettered(setup: None) -> None:
    out = handler("strategy")(["not", "an", "event"], Context())

    assert out["status"] == "dead_lettered"
    [dead] = receive("dead_events")
    assert reason_of(dead).startswith("invalid scheduler event")
    assert list(DynamoTable("evaluations").scan()) == []


# --- a plan's exits on the live path --------------------------------------------------------------------

STOP_SPEC = {
    "name": "never-enters",
    "side": "long",
    "entry": {"indicator": "close", "op": ">", "value": 1_000_000},
    "stop_loss": {"percent": 5},
}


def _long_position(opened_at: Any, quantity: int = 10, price: str = "100") -> None:
    from decimal import Decimal

    from tradeflow.domain import Position
    from tradeflow.storage.dynamo import transact
    from tradeflow.storage.positions import PositionRepository

    position = Position(
        tenant_id=TENANT,
        account_id=ACCOUNT,
        symbol="XYZ",
        quantity=Decimal(quantity),
        average_price=Decimal(price),
        opened_at=opened_at,
    )
    transact([PositionRepository().save_write(position)])


def test_a_plan_stop_touched_since_entry_closes_the_position(aws: object) -> None:
    account()
    deployment(symbols=("XYZ",), strategy="rules", params=STOP_SPEC)
    made = market([100.0] * 25 + [93.0])  # the last bar's low (92.07) is under the 95 stop
    _long_position(made[18].ts)

    out = run(scheduler_event("XYZ", T0))

    assert out["action"] == "sell"
    [evaluation] = evaluations()
    assert evaluation.reasons["exit"] == "stop_loss" and evaluation.reasons["level"] == 95.0
    assert evaluation.reasons["bar"] == made[-1].ts.isoformat()
    assert "strategy" in evaluation.reasons  # the strategy's own reasons are kept beside the exit
    [message] = receive("signals")
    signal = Signal.model_validate_json(message["Body"])
    assert signal.action.value == "sell" and signal.reasons["exit"] == "stop_loss"


def test_without_a_position_or_a_touch_the_plan_stays_quiet(aws: object) -> None:
    account()
    deployment(symbols=("XYZ",), strategy="rules", params=STOP_SPEC)
    made = market([100.0] * 26)
    assert run(scheduler_event("XYZ", T0))["action"] == "hold"  # flat
    _long_position(made[18].ts)
    assert run(scheduler_event("XYZ", T0 + timedelta(seconds=1)))["action"] == "hold"  # open, never touched
