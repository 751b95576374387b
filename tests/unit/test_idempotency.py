"""The Idempotency-Key store and helper: tenant-first keys, replay of the first result, 422 for a
different body, 409 + Retry-After while the first request runs, release on failure, TTL and lock
takeover (on moto)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tradeflow.api.auth import Principal
from tradeflow.api.errors import ApiError
from tradeflow.api.idempotency import LOCK_SECONDS, TTL_SECONDS, IdempotencyStore, fingerprint, idempotent
from tradeflow.storage.dynamo import DynamoTable


class Body(BaseModel):
    n: int


class Result(BaseModel):
    value: int


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def caller(tenant: str = "acme") -> Principal:
    return Principal(tenant_id=tenant, user_id="u1", expires_at=datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def store(aws: object) -> IdempotencyStore:
    return IdempotencyStore(clock=Clock())


def counter() -> tuple[list[int], Any]:
    calls: list[int] = []

    def run() -> Result:
        calls.append(1)
        return Result(value=len(calls))

    return calls, run


def test_without_a_key_every_request_runs(store: IdempotencyStore) -> None:
    calls, run = counter()
    idempotent(caller(), "r", None, Body(n=1), run, store=store)
    idempotent(caller(), "r", None, Body(n=1), run, store=store)
    assert len(calls) == 2


def test_a_retry_gets_the_first_result_and_the_record_is_tenant_first(store: IdempotencyStore) -> None:
    calls, run = counter()
    first = idempotent(caller(), "orders.create", "k", Body(n=1), run, status_code=202, store=store)
    again = idempotent(caller(), "orders.create", "k", Body(n=1), run, status_code=202, store=store)
    assert len(calls) == 1
    assert first.status_code == again.status_code == 202 and first.body == again.body
    assert again.headers["Idempotent-Replayed"] == "true"
    item = DynamoTable("idempotency").get({"pk": "acme", "sk": "orders.create#k"})
    assert item is not None and item["state"] == "completed"
    assert item["expires_at"] == int(store.clock()) + TTL_SECONDS


def test_keys_are_scoped_by_tenant_and_route(store: IdempotencyStore) -> None:
    calls, run = counter()
    idempotent(caller("acme"), "a", "k", Body(n=1), run, store=store)
    idempotent(caller("globex"), "a", "k", Body(n=1), run, store=store)
    idempotent(caller("acme"), "b", "k", Body(n=1), run, store=store)
    assert len(calls) == 3


def test_the_same_key_with_another_body_is_422_naming_the_header(store: IdempotencyStore) -> None:
    _, run = counter()
    idempotent(caller(), "r", "k", Body(n=1), run, store=store)
    with pytest.raises(ApiError) as raised:
        idempotent(caller(), "r", "k", Body(n=2), run, store=store)
    assert raised.value.status == 422 and raised.value.errors[0].field == "header.Idempotency-Key"


def test_a_duplicate_while_the_first_runs_is_409_with_retry_after(store: IdempotencyStore) -> None:
    assert store.claim("acme", "r", "k", fingerprint(Body(n=1))) is None  # the first request, in flight
    _, run = counter()
    with pytest.raises(ApiError) as raised:
        idempotent(caller(), "r", "k", Body(n=1), run, store=store)
    assert raised.value.status == 409 and raised.value.headers["Retry-After"] == str(LOCK_SECONDS)


def test_a_dead_claim_is_taken_over_after_the_lock(store: IdempotencyStore) -> None:
    assert store.claim("acme", "r", "k", fingerprint(Body(n=1))) is None
    store.clock.now += LOCK_SECONDS + 1  # type: ignore[attr-defined]
    calls, run = counter()
    idempotent(caller(), "r", "k", Body(n=1), run, store=store)
    assert len(calls) == 1


def test_a_failure_stores_nothing_and_frees_the_key(store: IdempotencyStore) -> None:
    def fail() -> Result:
        raise ApiError(422, "no")

    with pytest.raises(ApiError):
        idempotent(caller(), "r", "k", Body(n=1), fail, store=store)
    calls, run = counter()
    idempotent(caller(), "r", "k", Body(n=2), run, store=store)  # even with another body
    assert len(calls) == 1


def test_an_expired_record_no_longer_counts(store: IdempotencyStore) -> None:
    calls, run = counter()
    idempotent(caller(), "r", "k", Body(n=1), run, store=store)
    store.clock.now += TTL_SECONDS + 1  # type: ignore[attr-defined]
    idempotent(caller(), "r", "k", Body(n=2), run, store=store)
    assert len(calls) == 2


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    assert fingerprint(Body(n=1)) == fingerprint(Body.model_validate({"n": 1}))
    assert fingerprint(Body(n=1)) != fingerprint(Body(n=2))
