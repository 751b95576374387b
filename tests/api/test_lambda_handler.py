"""The API function as Lambda runs it: API Gateway HTTP API (payload v2) events from events/ through
functions/api/handler.py (Mangum) to the app, on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tradeflow.api.dev_issuer import DevIssuer
from tradeflow.local.lambdas import load_handler, repo_root

from helpers import Context

EVENTS = repo_root() / "events"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def lambda_api(aws: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Handler, DevIssuer]:
    key_file = tmp_path / "dev-issuer.pem"
    monkeypatch.setenv("TRADEFLOW_DEV_KEY_FILE", str(key_file))
    monkeypatch.setenv("TRADEFLOW_API_RATE_LIMIT", "0")
    return load_handler("api"), DevIssuer(key_file)


def _event(name: str, token: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def test_health_through_mangum(lambda_api: tuple[Handler, DevIssuer]) -> None:
    handler, _ = lambda_api
    out = handler(_event("api-health.json"), Context())
    assert out["statusCode"] == 200
    assert json.loads(out["body"])["status"] == "ok"
    assert out["headers"]["x-request-id"] == "sample-req-1"


def test_the_sample_token_placeholder_is_refused_as_data(lambda_api: tuple[Handler, DevIssuer]) -> None:
    handler, _ = lambda_api
    out = handler(_event("api-list-positions.json"), Context())
    assert out["statusCode"] == 401
    body = json.loads(out["body"])
    assert body["type"].startswith("unauthenticated") and body["request_id"] == "sample-req-1"
    assert out["headers"]["content-type"].startswith("application/problem+json")


def test_sample_requests_with_a_token_through_mangum(lambda_api: tuple[Handler, DevIssuer]) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from tradeflow.execution.accounts import open_account

    handler, issuer = lambda_api
    token = issuer.issue("acme", "user-1")
    created = handler(_event("api-create-strategy.json", token), Context())
    assert created["statusCode"] == 201, created["body"]
    strategy = json.loads(created["body"])
    assert strategy["strategy"] == "sma_cross" and strategy["params"]["slow"] == 200
    assert created["headers"]["location"].endswith(strategy["strategy_id"])

    open_account("acme", "paper-main", Decimal(10_000), datetime.now(UTC), broker_config={"fill_model": "last_price"})
    listed = handler(_event("api-list-positions.json", token), Context())
    assert listed["statusCode"] == 200, listed["body"]
    assert listed["isBase64Encoded"] is False and "items" in json.loads(listed["body"])


def test_a_validation_error_through_mangum_names_the_field(lambda_api: tuple[Handler, DevIssuer]) -> None:
    handler, issuer = lambda_api
    event = _event("api-create-strategy.json", issuer.issue("acme", "user-1"))
    event["body"] = json.dumps({"name": "x", "strategy": "sma_cross", "params": {"fast": 50, "slow": 20}})
    out = handler(event, Context())
    assert out["statusCode"] == 422
    fields = [e["field"] for e in json.loads(out["body"])["errors"]]
    assert any(f.startswith("body.params") for f in fields), fields
