"""A signal held up in the queue (an outage, a backlog) is rejected as stale, not traded late."""

from __future__ import annotations

from tradeflow.domain import SignalOutcome
from tradeflow.storage.signals import SignalRepository

from helpers import TENANT, Context, account, as_sqs_event, deployment, fake_message, handler, make_signal, receive


def _delivered_after(seconds: int, signal: object) -> dict[str, object]:
    message = fake_message(signal.model_dump_json(), group=signal.group_id)  # type: ignore[attr-defined]
    sent = int(message["Attributes"]["SentTimestamp"])
    message["Attributes"]["ApproximateFirstReceiveTimestamp"] = str(sent + seconds * 1000)
    return message


def test_a_signal_that_waited_too_long_is_rejected_with_how_long(aws: object) -> None:
    account()
    deployment()  # default risk profile: max_signal_age_seconds = 300
    signal = make_signal()
    out = handler("risk")(as_sqs_event("signals", [_delivered_after(301, signal)]), Context())
    assert out == {"batchItemFailures": []}
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None and record.outcome is SignalOutcome.REJECTED
    assert record.reason == "stale signal: waited 301s in the queue (max 300s)"
    assert receive("orders") == []


def test_a_signal_within_the_age_limit_is_decided_normally(aws: object) -> None:
    account()
    deployment()
    signal = make_signal()
    out = handler("risk")(as_sqs_event("signals", [_delivered_after(299, signal)]), Context())
    assert out == {"batchItemFailures": []}
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None and record.outcome is SignalOutcome.APPROVED
    assert len(receive("orders")) == 1


def test_a_message_without_timestamps_is_decided_without_the_age_check(aws: object) -> None:
    account()
    deployment()
    signal = make_signal()
    message = fake_message(signal.model_dump_json(), group=signal.group_id)
    del message["Attributes"]["SentTimestamp"], message["Attributes"]["ApproximateFirstReceiveTimestamp"]
    assert handler("risk")(as_sqs_event("signals", [message]), Context()) == {"batchItemFailures": []}
    record = SignalRepository().get(TENANT, signal.signal_id)
    assert record is not None and record.outcome is SignalOutcome.APPROVED
