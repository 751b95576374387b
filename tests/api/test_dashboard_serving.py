"""The dashboard as the API serves it (`tradeflow.dashboard.serve`): the page at `/`, its files under
`/dashboard/`, `config.json`, the security headers on every answer, no API operation in the schema, and
a clear answer (and a page that still loads) when the chart library was not built."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tradeflow.dashboard import serve

from apiclient import Api

VENDOR_URL = f"/dashboard/{serve.VENDOR_CHART}"


def _secure(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self' ws: wss:" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_the_page_is_served_at_the_root_without_a_token(api: Api) -> None:
    response = api.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    _secure(response)
    html = response.text
    assert '<script type="module" src="/dashboard/js/main.js"></script>' in html
    # nothing inline and nothing from another origin: every script and stylesheet is a file of ours
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)=["'](https?:)?//""", html)


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/dashboard/dashboard.css", "text/css; charset=utf-8"),
        ("/dashboard/js/main.js", "text/javascript; charset=utf-8"),
        ("/dashboard/js/live.js", "text/javascript; charset=utf-8"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_have_their_exact_type(api: Api, path: str, media_type: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    _secure(response)


def test_every_module_the_page_imports_is_served(api: Api) -> None:
    served = {"main.js"}
    queue = ["main.js"]
    while queue:
        source = api.client.get(f"/dashboard/js/{queue.pop()}").text
        for name in re.findall(r"""from\s+["']\./([\w.]+)["']""", source):
            assert api.client.get(f"/dashboard/js/{name}").status_code == 200, name
            if name not in served:
                served.add(name)
                queue.append(name)
    assert {"api.js", "live.js", "chart.js", "token.js", "tables.js"} <= served


def test_config_names_the_websocket_api_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(serve.WS_URL_ENV, raising=False)
    response = api.client.get("/dashboard/config.json")
    assert response.status_code == 200 and response.json() == {"ws_url": None, "api_base": "/v1"}
    _secure(response)
    monkeypatch.setenv(serve.WS_URL_ENV, "ws://127.0.0.1:8001")
    assert api.client.get("/dashboard/config.json").json() == {"ws_url": "ws://127.0.0.1:8001", "api_base": "/v1"}


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/nope.js",
        "/dashboard/../serve.py",
        "/dashboard/%2e%2e/serve.py",
        "/dashboard/..%2fserve.py",
        "/dashboard/js",
        "/dashboard/",
        "/dashboard/js/main.py",
    ],
)
def test_nothing_else_is_served(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 404, (path, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "import" not in response.text


def test_no_dashboard_route_is_an_api_operation(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/v1/")]


def test_a_missing_chart_library_is_named_and_the_page_still_loads(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unbuilt = tmp_path / "static"
    shutil.copytree(serve.STATIC_DIR, unbuilt, ignore=shutil.ignore_patterns("vendor"))
    monkeypatch.setattr(serve, "STATIC_DIR", unbuilt)
    missing = api.client.get(VENDOR_URL)
    assert missing.status_code == 404
    assert "make dashboard" in missing.json()["detail"]
    _secure(missing)
    assert api.client.get("/").status_code == 200
    chart = api.client.get("/dashboard/js/chart.js").text
    assert serve.VENDOR_CHART in chart and "make dashboard" in chart  # the page says so in the chart's place


def test_the_built_chart_library_is_served_when_present(api: Api) -> None:
    if not (serve.STATIC_DIR / serve.VENDOR_CHART).is_file():
        pytest.fail("the chart library is not built: run `make dashboard` (make test does)")
    response = api.client.get(VENDOR_URL)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert "createChart" in response.text
