"""The app's common behaviour: public health/version, errors as data, request ids, authentication
refusals (401 with a Problem body and a Bearer challenge), the tenant rate limit, cursors."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jwt
import pytest

from tradeflow.api.context import Caller
from tradeflow.api.pagination import decode_cursor, encode_cursor

from apiclient import TENANT_A, TENANT_B, Api, make_api


def test_health_and_version_are_public(api: Api) -> None:
    assert api.client.get("/v1/health").json()["status"] == "ok"
    version = api.client.get("/v1/version").json()
    assert version["name"] == "tradeflow" and version["api"] == "v1"


def test_openapi_and_docs_are_served(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert "/v1/health" in schema["paths"]
    assert api.client.get("/docs").status_code == 200


def test_an_unknown_route_is_a_problem_with_the_request_id(api: Api) -> None:
    response = api.client.get("/v1/nothing-here", headers={"x-request-id": "req-123"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "not_found" and "/v1/nothing-here" in body["detail"]
    assert body["request_id"] == "req-123" == response.headers["x-request-id"]


def test_a_request_id_is_generated_when_missing_or_unsafe(api: Api) -> None:
    generated = api.client.get("/v1/health").headers["x-request-id"]
    assert len(generated) == 32
    unsafe = api.client.get("/v1/health", headers={"x-request-id": "bad id\n"}).headers["x-request-id"]
    assert unsafe != "bad id\n" and len(unsafe) == 32


def test_request_ids_reach_every_log_line(api: Api) -> None:
    from tradeflow.api.context import logger

    app = api.client.app

    @app.get("/v1/_log_probe")  # type: ignore[attr-defined,untyped-decorator]
    def probe() -> dict[str, str]:
        logger.info("probe line")
        return {}

    lines: list[str] = []

    class Collect(logging.Handler):  # the JSON lines as Powertools formats them
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    collector = Collect()
    collector.setFormatter(logger.registered_formatter)
    logger.addHandler(collector)
    try:
        api.client.get("/v1/_log_probe", headers={"x-request-id": "trace-me"})
    finally:
        logger.removeHandler(collector)
    probes = [line for line in lines if "probe line" in line]
    assert probes and all('"request_id":"trace-me"' in line for line in probes)


@pytest.fixture
def probe_api(api: Api) -> Api:
    """`api` with one authenticated route, to test what every resource route inherits."""

    @api.client.app.get("/v1/_whoami")  # type: ignore[attr-defined,untyped-decorator]
    def whoami(caller: Caller) -> dict[str, object]:
        return {"tenant": caller.tenant_id, "user": caller.user_id, "admin": caller.is_admin}

    return api


def test_a_valid_token_names_the_caller(probe_api: Api) -> None:
    body = probe_api.client.get("/v1/_whoami", headers=probe_api.as_(TENANT_B, "bob", roles=["admin"])).json()
    assert body == {"tenant": TENANT_B, "user": "bob", "admin": True}


def _token(api: Api, **changes: object) -> str:
    """A dev-issuer token with claims changed (signed with the issuer's key)."""
    claims = jwt.decode(api.issuer.issue(TENANT_A, "user-1"), options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, api.issuer._private_key(), algorithm="RS256", headers={"kid": api.issuer.kid})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwidGVuYW50IjoiYWNtZSJ9.",
    ],
)
def test_missing_or_malformed_tokens_are_401(probe_api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = probe_api.client.get("/v1/_whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"].startswith("unauthenticated")


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"tenant": "bad tenant!"},
    ],
)
def test_expired_wrong_audience_issuer_or_tenant_are_401(probe_api: Api, changes: dict[str, object]) -> None:
    token = _token(probe_api, **changes)
    response = probe_api.client.get("/v1/_whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


def test_a_token_of_another_key_is_401(probe_api: Api, tmp_path: Path) -> None:
    from tradeflow.api.dev_issuer import DevIssuer

    stranger = DevIssuer(tmp_path / "other.pem").issue(TENANT_A, "user-1")
    response = probe_api.client.get("/v1/_whoami", headers={"Authorization": f"Bearer {stranger}"})
    assert response.status_code == 401


def test_the_rate_limit_is_per_tenant_and_answers_429_with_retry_after(
    aws: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    limited = make_api(tmp_path_factory.getbasetemp() / "api-keys", rate_per_minute=3)

    @limited.client.app.get("/v1/_whoami")  # type: ignore[attr-defined,untyped-decorator]
    def whoami(caller: Caller) -> dict[str, str]:
        return {"tenant": caller.tenant_id}

    a, b = limited.as_(TENANT_A), limited.as_(TENANT_B)
    codes = [limited.client.get("/v1/_whoami", headers=a).status_code for _ in range(4)]
    if codes[-1] == 200:  # the minute turned during the loop: the window restarted
        codes = [limited.client.get("/v1/_whoami", headers=a).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    over = limited.client.get("/v1/_whoami", headers=a)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 60
    assert over.json()["type"] == "rate_limited"
    assert limited.client.get("/v1/_whoami", headers=b).status_code == 200  # another tenant is unaffected


def test_cursors_round_trip_and_refuse_another_partition() -> None:
    cursor = encode_cursor({"pk": TENANT_A, "sk": "x-9"})
    assert decode_cursor(cursor, "pk", TENANT_A) == {"pk": TENANT_A, "sk": "x-9"}
    from tradeflow.api.errors import ApiError

    for bad in (cursor, "%%%", encode_cursor({"sk": "x"})):
        with pytest.raises(ApiError) as caught:
            decode_cursor(bad, "pk", TENANT_B)
        assert caught.value.status == 422 and caught.value.errors[0].field == "query.cursor"


def test_a_forged_cursor_with_the_right_tenant_is_422_not_500(api: Api) -> None:
    from tradeflow.api.pagination import encode_cursor as encode

    headers = api.as_(TENANT_A)
    for forged in (
        encode({"pk": TENANT_A}),  # the sort key missing: DynamoDB refuses the start key
        encode({"pk": TENANT_A, "sk": {"nested": 1}}),
        encode({"pk": TENANT_A, "sk": "x", "evil": "y"}),
    ):
        response = api.client.get(f"/v1/strategies?cursor={forged}", headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "query.cursor"
