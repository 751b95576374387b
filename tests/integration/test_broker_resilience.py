"""The resilience rules around real brokers, on the rules themselves (the adapters' own tests drive
them through alpaca-py and ccxt against the stubs): reads retried with jitter, an order POST retried
only after a 429, and the per-account circuit breaker's open / half-open / closed cycle in DynamoDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tradeflow.brokers.port import BrokerTimeout, BrokerUnavailable, RateLimited
from tradeflow.brokers.resilience import CircuitBreaker, CircuitOpen, jittered, retry_read, submit_once
from tradeflow.storage.audit import AuditRepository

from helpers import T0, Clock


def _failing(errors: list[Exception], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def test_full_jitter_stays_within_the_exponential_bound() -> None:
    for attempt in range(8):
        samples = [jittered(attempt, base=0.25, cap=8.0) for _ in range(200)]
        assert all(0 <= s <= min(8.0, 0.25 * 2**attempt) for s in samples)
    assert len({round(jittered(5), 6) for _ in range(20)}) > 1  # random, not in lockstep


def test_reads_are_retried_and_a_429s_retry_after_is_honoured() -> None:
    slept: list[float] = []
    call, calls = _failing([BrokerTimeout("slow"), RateLimited("429", retry_after=3.0)])
    assert retry_read(call, "positions", sleep=slept.append) == "ok"
    assert len(calls) == 3
    assert slept[1] >= 3.0


def test_a_read_that_keeps_failing_raises_the_last_failure() -> None:
    call, calls = _failing([BrokerUnavailable("down")] * 10)
    with pytest.raises(BrokerUnavailable):
        retry_read(call, "account", attempts=4, sleep=lambda _: None)
    assert len(calls) == 4


def test_an_order_post_is_never_retried_after_a_timeout_only_after_a_429() -> None:
    call, calls = _failing([BrokerTimeout("no answer")])
    with pytest.raises(BrokerTimeout):
        submit_once(call, sleep=lambda _: None)
    assert len(calls) == 1
    call, calls = _failing([RateLimited("429", retry_after=1.5)])
    slept: list[float] = []
    assert submit_once(call, sleep=slept.append) == "ok"
    assert len(calls) == 2 and slept[0] >= 1.5


def test_the_breaker_opens_after_consecutive_failures_refuses_then_lets_one_through(aws: object) -> None:
    clock = Clock(T0)
    breaker = CircuitBreaker("acme", "alp-1", threshold=3, cooldown=timedelta(seconds=60), clock=clock)
    breaker.check()
    assert not breaker.failure("BrokerUnavailable: 503")
    breaker.success()  # a success in between resets the count
    assert [breaker.failure("BrokerTimeout: read timed out") for _ in range(3)] == [False, False, True]
    with pytest.raises(CircuitOpen) as refused:
        breaker.check()
    assert "3 broker failures in a row" in str(refused.value) and "read timed out" in str(refused.value)
    events = [e for e in AuditRepository().list("acme") if e.action == "broker.circuit_opened"]
    assert len(events) == 1 and events[0].subject == "alp-1"
    # another account is not affected
    CircuitBreaker("acme", "alp-2", clock=clock).check()
    clock.now += timedelta(seconds=61)
    half_open = CircuitBreaker("acme", "alp-1", threshold=3, clock=clock)
    half_open.check()  # the cooldown is over: one submission may try
    half_open.success()
    assert half_open.state()["failures"] == 0 and half_open.state()["state"] == "closed"
