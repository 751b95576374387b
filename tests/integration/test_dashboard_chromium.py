"""The dashboard in a real browser, against a running local cloud: Debian's `chromium`, headless, driven
by playwright (the system browser: no browser download).

The local cloud runs in this process as `make run` starts it (demo tenant trading on a fast replay clock,
REST API and WebSocket API on free ports, `TRADEFLOW_WS_URL` set so the page finds the WebSocket API).
`test_live_dashboard` opens `/#token=...`, waits until the page is live (subscribed), then places a manual
order over REST and checks that its fill arrives in the fills table *live* (the row is marked as learnt
from the WebSocket, not from a REST load), that positions, deployments and the equity chart render, and
that the page ran without script errors or Content-Security-Policy violations. A screenshot is kept in
`test-artifacts/dashboard-chromium/dashboard.png` (gitignored). `test_without_live_updates_or_chart_library`
serves it with neither `TRADEFLOW_WS_URL` nor the built chart library; `test_bad_token_is_refused_clearly`
opens it with a token of another issuer.

`chromium` is required, not optional (see tests/integration/test_report_chromium.py): a machine without it
fails here with the command that installs it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradeflow.api.dev_issuer import DevIssuer
from tradeflow.dashboard import serve
from tradeflow.local.cloud import LocalCloud
from tradeflow.local.demo import DEMO_ACCOUNT, DEMO_DEPLOYMENT, DEMO_TENANT

from helpers import chromium_path, running_cloud

pytestmark = [pytest.mark.xdist_group("chromium"), pytest.mark.e2e]  # one browser at a time, on one worker

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard-chromium"
SYMBOLS = ["GOOG", "SPY"]
WAIT_MS = 25_000


def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        pytest.fail(
            "the playwright package is missing: `.venv/bin/pip install playwright` (no browser download needed)"
        )
    return start()


@dataclass
class Site:
    cloud: LocalCloud
    url: str
    token: str
    key_dir: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The local cloud with the REST and WebSocket APIs, the demo trading, on a fast clock."""
    if not (serve.STATIC_DIR / serve.VENDOR_CHART).is_file():
        pytest.fail("the dashboard's chart library is not built: run `make dashboard` (make test does)")
    keys = tmp_path_factory.mktemp("dashboard-keys")
    with running_cloud(keys, SYMBOLS) as cloud:  # it exports TRADEFLOW_WS_URL, as `make run` does
        assert cloud.api is not None
        token = cloud.api.issuer.issue(DEMO_TENANT, "dashboard-test", ttl_seconds=3600)
        yield Site(cloud, cloud.api.url, token, keys)


@dataclass
class Browser:
    page: Any
    problems: list[str] = field(default_factory=list)  # script errors and CSP violations


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path("the dashboard's browser test"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            context = launched.new_context(viewport={"width": 1440, "height": 1200}, device_scale_factor=1)
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            seen = Browser(page)

            def console(message: Any) -> None:
                text = message.text
                if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
                    seen.problems.append(f"CSP: {text}")

            page.on("console", console)
            page.on("pageerror", lambda error: seen.problems.append(f"script error: {error}"))
            yield seen
        finally:
            launched.close()


def _place_order(site: Site, symbol: str = "GOOG") -> str:
    body = {
        "account_id": DEMO_ACCOUNT,
        "symbol": symbol,
        "side": "buy",
        "quantity": "1",
        "client_tag": "dashboard-test",
    }
    response = httpx.post(
        f"{site.url}/v1/orders", json=body, headers={"Authorization": f"Bearer {site.token}"}, timeout=30
    )
    assert response.status_code == 202, response.text
    coid: str = response.json()["client_order_id"]
    return coid


def test_live_dashboard(site: Site, browser: Browser) -> None:
    page = browser.page
    started = time.monotonic()
    page.goto(f"{site.url}/#token={site.token}")
    # the token is taken from the fragment, kept in the tab, and removed from the address bar
    page.wait_for_function("() => sessionStorage.getItem('tradeflow.token') !== null")
    assert "token=" not in page.url

    # REST data first: the account, its equity curve, the demo deployment with its symbols
    page.wait_for_selector("#app:not([hidden])")
    assert page.locator("#account-select").input_value() == DEMO_ACCOUNT
    page.wait_for_selector("#equity-chart[data-state='ready'] canvas", state="attached")
    page.wait_for_selector(f".deployment[data-deployment-id='{DEMO_DEPLOYMENT}']")
    for symbol in SYMBOLS:
        assert (
            page.locator(f".deployment[data-deployment-id='{DEMO_DEPLOYMENT}'] tr[data-symbol='{symbol}']").count() == 1
        )
    assert page.locator("#trading-state").get_attribute("data-halted") == "false"
    assert page.locator("#kill-switch").is_enabled()

    # live: connected, subscribed, and the lists refetched since (what happened before is in them)
    page.wait_for_selector("#conn-status[data-state='live']")
    page.wait_for_selector("body[data-synced='true']", state="attached")
    known = set(page.locator("#fills tbody tr").evaluate_all("rows => rows.map(r => r.dataset.fillId)"))

    # a fill made after the connection reaches the table over the WebSocket, not a REST load
    coid = _place_order(site)
    row = page.locator(f"#fills tbody tr[data-client-order-id='{coid}']")
    row.wait_for()
    assert row.get_attribute("data-origin") == "live", "the fill came from a REST refetch, not a live update"
    assert row.get_attribute("data-fill-id") not in known
    page.wait_for_selector(f"#orders tbody tr[data-client-order-id='{coid}'][data-status='filled']")

    # positions and the summary reflect the books; the equity chart has points
    page.wait_for_selector("#positions tbody tr[data-symbol='GOOG']")
    assert page.locator("[data-empty-for='positions']").is_hidden()
    assert page.locator("#summary [data-field='equity']").inner_text() not in ("", "—")
    # the curve is extended live past its REST load (the opening deposit): by the new fill at least
    page.wait_for_function("() => Number(document.querySelector('#equity-chart').dataset.points) >= 2")
    assert page.locator("#conn-status").get_attribute("data-state") == "live"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # the kill switch: on (confirmed in a dialog, with a reason), shown as halted; then released
    _kill_switch(page, "dashboard test")
    page.wait_for_selector("#trading-state[data-halted='true']")
    assert "dashboard test" in page.locator("#trading-state").inner_text()
    assert page.locator("#kill-switch").inner_text() == "Release kill switch"
    _kill_switch(page, "")
    page.wait_for_selector("#trading-state[data-halted='false']")
    assert page.locator("#kill-switch").inner_text() == "Kill switch"

    # the server drops the connection: the page reconnects (backoff), subscribes again and is live
    gateway = site.cloud.ws
    assert gateway is not None
    dropped = set(gateway.connections)
    assert dropped, "the page holds no WebSocket connection"
    for connection_id in dropped:
        gone = httpx.delete(f"{gateway.management_url}/@connections/{connection_id}", timeout=10)
        assert gone.status_code in (200, 204), gone.text
    deadline = time.monotonic() + 15
    while not set(gateway.connections) - dropped and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(gateway.connections) - dropped, "the page did not reconnect"
    page.wait_for_selector("#conn-status[data-state='live']")
    page.wait_for_selector("body[data-synced='true']", state="attached")
    again = _place_order(site)
    page.wait_for_selector(f"#fills tbody tr[data-client-order-id='{again}'][data-origin='live']")
    assert not browser.problems, browser.problems
    assert time.monotonic() - started < 60


def _kill_switch(page: Any, reason: str) -> None:
    page.click("#kill-switch")
    page.wait_for_selector("#kill-dialog[open]")
    page.fill("#kill-reason", reason)
    page.click("#kill-confirm")
    page.wait_for_selector("#kill-dialog", state="hidden")


def test_without_live_updates_or_chart_library(
    site: Site, browser: Browser, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No TRADEFLOW_WS_URL and no built chart library: the page says both, and still shows REST data."""
    unbuilt = tmp_path / "static"
    shutil.copytree(serve.STATIC_DIR, unbuilt, ignore=shutil.ignore_patterns("vendor"))
    monkeypatch.setattr(serve, "STATIC_DIR", unbuilt)  # the API serves from this process
    monkeypatch.delenv(serve.WS_URL_ENV)
    # the page loads the books over REST once (then every 30 s): let the demo have an order first, so the
    # test does not depend on which of this module's tests ran before it on this worker
    deadline = time.monotonic() + 60
    auth = {"Authorization": f"Bearer {site.token}"}
    while not httpx.get(f"{site.url}/v1/orders", params={"account_id": DEMO_ACCOUNT}, headers=auth).json()["items"]:
        assert time.monotonic() < deadline, "the demo placed no order within 60 s"
        time.sleep(0.5)
    page = browser.page
    page.goto(f"{site.url}/#token={site.token}")
    page.wait_for_selector("#conn-status[data-state='unconfigured']")
    assert "not configured" in page.locator("#banners").inner_text()
    notice = page.locator("#equity-chart[data-state='missing-library'] .notice")
    notice.wait_for()
    assert "make dashboard" in notice.inner_text()
    page.wait_for_selector(f".deployment[data-deployment-id='{DEMO_DEPLOYMENT}']")
    page.wait_for_selector("#orders tbody tr")  # the demo's orders, loaded over REST
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "unconfigured.png"))
    # the missing module is the one expected 404 (logged by the browser); nothing else went wrong
    assert not browser.problems, browser.problems


def test_bad_token_is_refused_clearly(site: Site, browser: Browser) -> None:
    stranger = DevIssuer(site.key_dir / "another-issuer.pem").issue(DEMO_TENANT, "intruder", ttl_seconds=600)
    page = browser.page
    page.goto(f"{site.url}/#token={stranger}")
    page.wait_for_selector("#token-gate:not([hidden])")
    error = page.locator("#token-error")
    page.wait_for_function("() => document.querySelector('#token-error').textContent.includes('rejected')")
    assert "The API rejected the token" in error.inner_text()
    assert page.locator("#app").is_hidden()
    assert page.evaluate("() => sessionStorage.getItem('tradeflow.token')") is None  # not kept
    # pasting something that is not a token says so without asking the API
    page.fill("#token-input", "not a token")
    page.click("#token-form button[type='submit']")
    assert "not a JWT" in error.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bad-token.png"))
    assert not browser.problems, browser.problems
