"""`Idempotency-Key` for POSTs: a retried request gets the first request's result.

Why not Powertools' idempotency utility: it keys its records by a hash of the payload (or a JMESPath
into it) in a table of its own layout, with no tenant-first partition key; design rule 5 wants every key
to lead with the tenant, so that no read can cross the wall. Records here live in the catalogue's
`idempotency` table: pk = tenant, sk = `<route>#<key>`, with a 24 h TTL (`expires_at`).

Semantics (after draft-ietf-httpapi-idempotency-key-header):
- the first request with a key claims it (a conditional put, state `in_progress`), runs, and stores its
  result — status and JSON body — when it succeeds (2xx);
- a retry with the same key and the same body gets that stored result again, with
  `Idempotent-Replayed: true`;
- the same key with a different body is refused with **422** naming `header.Idempotency-Key` (the key
  identifies one request; it is not a lock to be re-used);
- a duplicate arriving while the first is still running gets **409** with `Retry-After`;
- a request that fails (any error response) releases the key: nothing is stored, so the client can
  fix the request and retry with the same key. A claim whose request died is taken over after
  `LOCK_SECONDS`.

Use: a route takes `IdempotencyKey` (the optional header) and returns
`idempotent(caller, "orders.create", key, body, run, status_code=202)`, where `run()` returns the
response model. Without a key the route simply runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tradeflow.api.auth import Principal
from tradeflow.api.errors import ApiError, field_error
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 60
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, no spaces

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description="a unique key per logical request (e.g. a UUID); a retry with the same key and body "
        "returns the first result for 24 h",
    ),
]


def fingerprint(body: BaseModel | None) -> str:
    """A stable hash of the validated request body."""
    data = body.model_dump(mode="json") if body is not None else None
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.table = DynamoTable("idempotency")
        self.clock = clock

    @staticmethod
    def key(tenant_id: str, route: str, key: str) -> dict[str, str]:
        return {"pk": tenant_id, "sk": f"{route}#{key}"}

    def claim(self, tenant_id: str, route: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """Claim the key for this request; None when claimed, else the existing record."""
        now = int(self.clock())
        item = {
            **self.key(tenant_id, route, key),
            "state": "in_progress",
            "request_hash": request_hash,
            "locked_until": now + LOCK_SECONDS,
            "expires_at": now + TTL_SECONDS,
        }
        try:
            # free, expired (TTL deletion lags), or an in-progress claim whose request died
            self.table.put(
                item,
                condition="attribute_not_exists(pk) OR expires_at < :now OR (#state = :busy AND locked_until < :now)",
                names={"#state": "state"},
                values={":now": now, ":busy": "in_progress"},
            )
        except ConditionFailed:
            return self.table.get(self.key(tenant_id, route, key)) or {}
        return None

    def complete(
        self, tenant_id: str, route: str, key: str, request_hash: str, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        self.table.update(
            self.key(tenant_id, route, key),
            "SET #state = :done, response_status = :s, response_body = :b, response_headers = :hd REMOVE locked_until",
            condition="request_hash = :h",
            names={"#state": "state"},
            values={
                ":done": "completed",
                ":s": status,
                ":b": json.dumps(body),
                ":hd": json.dumps(headers),
                ":h": request_hash,
            },
        )

    def release(self, tenant_id: str, route: str, key: str, request_hash: str) -> None:
        with contextlib.suppress(ConditionFailed):  # (completed or taken over meanwhile: not ours to free)
            self.table.update(
                self.key(tenant_id, route, key),
                "REMOVE locked_until SET expires_at = :gone",
                condition="request_hash = :h AND #state = :busy",
                names={"#state": "state"},
                values={":gone": 0, ":h": request_hash, ":busy": "in_progress"},
            )


def idempotent(
    caller: Principal,
    route: str,
    key: str | None,
    body: BaseModel | None,
    run: Callable[[], BaseModel],
    *,
    status_code: int = 200,
    headers: Callable[[BaseModel], dict[str, str]] | None = None,
    store: IdempotencyStore | None = None,
) -> JSONResponse:
    """Run `run()` at most once per (tenant, route, key); see the module docstring."""
    if key is None:
        result = run()
        return JSONResponse(result.model_dump(mode="json"), status_code, headers=(headers or _none)(result))
    store = store or IdempotencyStore()
    request_hash = fingerprint(body)
    existing = store.claim(caller.tenant_id, route, key, request_hash)
    if existing is not None:
        if not existing:  # released between our claim and our read: let the client try again
            raise ApiError(409, f"a request with this {HEADER} has just failed; retry", headers={"Retry-After": "1"})
        if existing.get("request_hash") != request_hash:
            raise field_error(f"header.{HEADER}", "this key was already used with a different request body")
        if existing.get("state") == "completed":
            stored = json.loads(str(existing["response_body"]))
            replay_headers = {REPLAYED_HEADER: "true", **_stored_headers(existing)}
            return JSONResponse(stored, int(existing["response_status"]), headers=replay_headers)
        wait = max(1, int(existing.get("locked_until", 0)) - int(store.clock()))
        raise ApiError(
            409,
            f"a request with this {HEADER} is still being processed; retry later",
            headers={"Retry-After": str(min(wait, LOCK_SECONDS))},
        )
    try:
        result = run()
    except BaseException:
        store.release(caller.tenant_id, route, key, request_hash)
        raise
    payload = result.model_dump(mode="json")
    extra = (headers or _none)(result)
    store.complete(caller.tenant_id, route, key, request_hash, status_code, payload, extra)
    return JSONResponse(payload, status_code, headers=extra)


def _none(_: BaseModel) -> dict[str, str]:
    return {}


def _stored_headers(record: dict[str, Any]) -> dict[str, str]:
    stored = json.loads(str(record.get("response_headers") or "{}"))
    return {str(k): str(v) for k, v in stored.items()}
