"""Serving the dashboard from the API app: `/` (the page), `/dashboard/config.json`, `/dashboard/<file>`.

The files are read from this package's `static/` directory at request time (nothing is loaded at
import: the API's cold start does not pay for the dashboard). None of these routes is an API operation,
so none appears in the OpenAPI schema. Every answer carries strict security headers: a
Content-Security-Policy that allows only this origin's scripts and styles (no inline code, no third
party) and WebSocket connections, `nosniff`, and no referrer (the token never leaves in a Referer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tradeflow.api.errors import problem_response
from tradeflow.realtime import CLIENT_URL_ENV

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
VENDOR_CHART: Final = "vendor/lightweight-charts.standalone.production.mjs"
WS_URL_ENV: Final = CLIENT_URL_ENV
API_BASE: Final = "/v1"
# the route templates this module adds (test_tenant_wall excludes them: they serve no tenant's data)
PATHS: Final = ("/", "/dashboard/config.json", "/dashboard/{path:path}")

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate: a rebuilt dashboard is picked up at once
}
# only these kinds of file are served, each with its exact type (nosniff makes the browser trust it)
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def config() -> dict[str, str | None]:
    """What the page needs to know about its deployment: where the WebSocket API is (None: not
    configured, the page shows REST data only) and where the REST API is."""
    return {"ws_url": os.environ.get(WS_URL_ENV) or None, "api_base": API_BASE}


def _file(relative: str) -> Path | None:
    """The file under STATIC_DIR named by `relative`, or None (missing, a directory, outside it, or of
    a kind not served)."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    root = STATIC_DIR.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path.suffix not in CONTENT_TYPES or not path.is_file():
        return None
    return path


def _not_found(request: Request, relative: str) -> Response:
    detail = f"no dashboard file {relative!r}"
    if relative == VENDOR_CHART:
        detail = "the dashboard's chart library was not built: run `make dashboard` (npm ci + copy)"
    response = problem_response(request, 404, detail)
    response.headers.update(SECURITY_HEADERS)
    return response


def install(app: FastAPI) -> None:
    """Add the dashboard's routes to `app` (outside the API's schema)."""

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        return asset(request, "index.html")

    @app.get("/dashboard/config.json", include_in_schema=False)
    def dashboard_config() -> Response:
        return JSONResponse(config(), headers=SECURITY_HEADERS)

    @app.get("/dashboard/{path:path}", include_in_schema=False)
    def asset(request: Request, path: str) -> Response:
        found = _file(path)
        if found is None:
            return _not_found(request, path)
        return Response(found.read_bytes(), media_type=CONTENT_TYPES[found.suffix], headers=SECURITY_HEADERS)
