"""The API function's warm latency: API Gateway HTTP API (v2) events through functions/api/handler.py
(Mangum -> FastAPI -> moto), p50/p99 for a read (GET /v1/accounts/{id}) and a write
(POST /v1/strategies), each request authenticated and counted by the tenant rate limiter, as in AWS.
The reference beside each figure is one DynamoDB GetItem to the same server."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeflow.bench.stats import describe, percentile
from tradeflow.local.environment import use_local_cloud
from tradeflow.local.lambdas import LambdaContext, load_handler, repo_root
from tradeflow.local.moto_server import MotoServer, free_port
from tradeflow.local.provision import provision
from tradeflow.storage.dynamo import DynamoTable

TENANT, ACCOUNT = "bench", "paper-bench"


def _event(method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    template = "api-create-strategy.json" if body is not None else "api-list-positions.json"
    event: dict[str, Any] = json.loads((repo_root() / "events" / template).read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    event["headers"]["authorization"] = f"Bearer {token}"
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def measure(n: int = 200) -> dict[str, list[float]]:
    server = MotoServer(free_port())
    server.start()
    keys = tempfile.mkdtemp(prefix="tradeflow-bench-")
    saved = {k: os.environ.get(k) for k in ("TRADEFLOW_DEV_KEY_FILE", "TRADEFLOW_API_RATE_LIMIT")}
    try:
        use_local_cloud(server.endpoint)
        provision()
        os.environ["TRADEFLOW_DEV_KEY_FILE"] = str(Path(keys) / "dev-issuer.pem")
        os.environ["TRADEFLOW_API_RATE_LIMIT"] = str(10 * n + 100)  # counted, never reached
        from tradeflow.api.dev_issuer import DevIssuer
        from tradeflow.execution.accounts import open_account

        open_account(TENANT, ACCOUNT, Decimal(100_000), datetime.now(UTC), broker_config={"fill_model": "last_price"})
        token = DevIssuer().issue(TENANT, "bench-user")
        handler = load_handler("api")
        context = LambdaContext("tradeflow-local-api", 1024, 29)
        read = _event("GET", f"/v1/accounts/{ACCOUNT}", token)
        results: dict[str, list[float]] = {
            "reference: one GetItem": [],
            "GET /v1/accounts/{id}": [],
            "POST /v1/strategies": [],
        }
        table = DynamoTable("accounts")
        for i in range(n + 10):  # the first 10 warm up
            started = time.perf_counter()
            table.get({"pk": TENANT, "sk": ACCOUNT})
            reference = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            out = handler(read, context)
            read_ms = (time.perf_counter() - started) * 1000
            assert out["statusCode"] == 200, out
            body = {"name": f"bench {i}", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}
            write = _event("POST", "/v1/strategies", token, body)
            started = time.perf_counter()
            out = handler(write, context)
            write_ms = (time.perf_counter() - started) * 1000
            assert out["statusCode"] == 201, out
            if i >= 10:
                results["reference: one GetItem"].append(reference)
                results["GET /v1/accounts/{id}"].append(read_ms)
                results["POST /v1/strategies"].append(write_ms)
        return results
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def report(results: dict[str, list[float]]) -> None:
    print("\n== API function, warm, through Mangum against moto's server ==")
    reference = percentile(results["reference: one GetItem"], 50)
    for name, samples in results.items():
        ratio = percentile(samples, 50) / reference if reference else float("nan")
        print(f"  {name:<24} {describe(samples)}   {ratio:5.1f}x one GetItem")
