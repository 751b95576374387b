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
