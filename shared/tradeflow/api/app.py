"""The FastAPI application: every router under /v1, errors as data, request ids, auth, rate limits.

`create_app()` is what both hosts serve: `functions/api/handler.py` wraps it with Mangum behind API
Gateway's HTTP API, and the local cloud runs it under uvicorn on 127.0.0.1:8000. OpenAPI is at
`/openapi.json`, interactive docs at `/docs`. The trader's dashboard (`tradeflow.dashboard`) is served at
`/` and `/dashboard/...`, outside the API's schema.

Routers are listed in `ROUTERS` as module names under `tradeflow.api.routers`, each exposing `router`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from fastapi import FastAPI

from tradeflow.api import context, errors
from tradeflow.api.auth import AuthSettings, TokenVerifier
from tradeflow.api.ratelimit import RateLimiter
from tradeflow.dashboard import serve as dashboard

API_PREFIX = "/v1"
# router modules under tradeflow.api.routers, in the order their tags appear in the docs
ROUTERS: tuple[str, ...] = (
    "health",
    "strategies",
    "backtests",
    "deployments",
    "orders",
    "positions",
    "portfolio",
    "analytics",
    "fills",
    "ledger",
    "accounts",
    "controls",
    "audit",
    "market",
)

DEFAULT_RATE_PER_MINUTE = 600


@dataclass
class AppSettings:
    auth: AuthSettings | None = None  # None: from the environment (AuthSettings.from_env)
    rate_per_minute: int | None = None  # None: TRADEFLOW_API_RATE_LIMIT or DEFAULT_RATE_PER_MINUTE; 0 = off
    routers: tuple[str, ...] = field(default_factory=lambda: ROUTERS)
    dashboard: bool = True  # serve the dashboard at / (tradeflow.dashboard)


def create_app(settings: AppSettings | None = None) -> FastAPI:
    cfg = settings or AppSettings()
    app = FastAPI(
        title="tradeflow",
        version="1",
        summary="Algorithmic trading: strategies, backtests, deployments, orders, portfolio, controls.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.verifier = TokenVerifier(cfg.auth or AuthSettings.from_env())
    rate = cfg.rate_per_minute
    if rate is None:
        rate = int(os.environ.get("TRADEFLOW_API_RATE_LIMIT", DEFAULT_RATE_PER_MINUTE))
    app.state.rate_limiter = RateLimiter(rate) if rate > 0 else None
    errors.install(app)
    context.install(app)
    for name in cfg.routers:
        module = importlib.import_module(f"tradeflow.api.routers.{name}")
        app.include_router(module.router, prefix=API_PREFIX, responses=errors.PROBLEM_RESPONSES)
    if cfg.dashboard:
        dashboard.install(app)
    return app
