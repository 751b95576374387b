"""Live updates end to end: real WebSocket clients on the local gateway receive what the pipeline does.

The local cloud runs in this process as `make run` starts it (demo tenant trading on a fast replay clock,
REST API and WebSocket gateway on free ports). Clients connect with tokens from the dev issuer, subscribe,
and must receive — within seconds — the order, fill and position updates produced by a paper deployment,
in the same shapes the REST API returns, numbered 1, 2, 3 ... per connection. Another tenant's socket,
subscribed to the same channels, must receive none of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tradeflow.api.dev_issuer import DevIssuer
from tradeflow.local.cloud import LocalCloud
from tradeflow.local.demo import DEMO_ACCOUNT, DEMO_TENANT

from helpers import running_cloud

pytestmark = pytest.mark.e2e

CHANNELS = ["orders", "fills", "positions", "signals", "controls", "alerts"]
WITHIN_S = 20.0  # the pipeline runs on a 2-core machine next to other tests; seconds, not minutes


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with running_cloud(tmp_path_factory.mktemp("issuer"), ["GOOG", "SPY"]) as local:
        yield local


def token(tenant: str, user: str = "trader") -> str:
    return DevIssuer().issue(tenant, user)


class Client:
    """A real WebSocket client; a thread collects every frame it receives."""

    def __init__(self, url: str, tenant: str) -> None:
        self.ws: ClientConnection = connect(f"{url}/?token={token(tenant)}", open_timeout=10, legacy=True)
        self.frames: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:  # closed
                return
            with self.lock:
                self.frames.append(json.loads(raw))

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def updates(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [f for f in self.frames if f["type"] == "update" and channel in (None, f["channel"])]

    def wait(self, what: str, found: Any, timeout: float = WITHIN_S) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                frames = list(self.frames)
            hit = found(frames)
            if hit:
                return hit
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout} s; got {[f.get('channel', f['type']) for f in frames]}")

    def close(self) -> None:
        self.ws.close()


def subscribed(client: Client, channels: list[str]) -> None:
    client.send({"action": "subscribe", "channels": channels, "id": "sub"})
    client.wait("subscribe reply", lambda fs: [f for f in fs if f["type"] == "subscribed" and f.get("id") == "sub"])


def place_order(cloud: LocalCloud, side: str = "buy", quantity: str = "3") -> str:
    assert cloud.api is not None
    response = httpx.post(
        f"{cloud.api.url}/v1/orders",
        headers={"Authorization": f"Bearer {token(DEMO_TENANT)}"},
        json={"account_id": DEMO_ACCOUNT, "symbol": "GOOG", "side": side, "quantity": quantity},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    coid: str = response.json()["client_order_id"]
    return coid


def test_a_manual_order_reaches_the_socket_as_order_fill_and_position_updates(cloud: LocalCloud) -> None:
    assert cloud.ws is not None and cloud.api is not None
    demo, other = Client(cloud.ws.url, DEMO_TENANT), Client(cloud.ws.url, "globex")
    try:
        subscribed(demo, CHANNELS)
        subscribed(other, CHANNELS)
        coid = place_order(cloud)
        started = time.monotonic()

        def filled(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                f
                for f in frames
                if f["type"] == "update"
                and f["channel"] == "orders"
                and f["data"]["client_order_id"] == coid
                and f["data"]["status"] == "filled"
            ]

        order = demo.wait(f"filled order {coid}", filled)[0]["data"]
        fill = demo.wait(
            "its fill",
            lambda fs: [f for f in fs if f.get("channel") == "fills" and f["data"]["client_order_id"] == coid],
        )[0]["data"]
        position = demo.wait(
            "the GOOG position",
            lambda fs: [f for f in fs if f.get("channel") == "positions" and f["data"]["symbol"] == "GOOG"],
        )[-1]["data"]
        latency = time.monotonic() - started
        assert latency < WITHIN_S

        # the same shapes as the REST API
        headers = {"Authorization": f"Bearer {token(DEMO_TENANT)}"}
        rest = httpx.get(f"{cloud.api.url}/v1/orders/{coid}", headers=headers, timeout=30).json()
        assert order == rest
        assert fill["quantity"] == "3" and fill["symbol"] == "GOOG" and set(fill) >= {"fill_id", "price", "notional"}
        assert position["account_id"] == DEMO_ACCOUNT and set(position) >= {"mark_price", "unrealized_pnl"}

        # sequence numbers count 1, 2, 3 ... per connection, without gaps
        seqs = [f["seq"] for f in demo.updates()]
        assert seqs == list(range(1, len(seqs) + 1))

        # tenant wall: globex heard nothing of the demo tenant's trading, though subscribed to everything
        time.sleep(1.0)
        assert other.updates() == []
    finally:
        demo.close()
        other.close()


def test_a_deployment_trading_is_seen_live_with_its_reasons(cloud: LocalCloud) -> None:
    assert cloud.ws is not None
    client = Client(cloud.ws.url, DEMO_TENANT)
    try:
        subscribed(client, ["signals", "quotes:GOOG"])
        evaluation = client.wait(
            "an evaluation of the demo deployment",
            lambda fs: [f for f in fs if f.get("channel") == "signals"],
            timeout=30,
        )[0]["data"]
        assert evaluation["symbol"] in ("GOOG", "SPY") and evaluation["deployment_id"]
        assert "action" in evaluation and isinstance(evaluation["reasons"], dict)
        bar = client.wait("a GOOG quote", lambda fs: [f for f in fs if f.get("channel") == "quotes:GOOG"])[0]
        assert bar["data"]["symbol"] == "GOOG" and float(bar["data"]["close"]) > 0
        assert "tenant_id" not in evaluation and "tenant_id" not in bar["data"]
    finally:
        client.close()


def test_the_kill_switch_is_pushed_on_controls_and_alerts(cloud: LocalCloud) -> None:
    assert cloud.ws is not None and cloud.api is not None
    client = Client(cloud.ws.url, DEMO_TENANT)
    headers = {"Authorization": f"Bearer {token(DEMO_TENANT)}"}
    try:
        subscribed(client, ["controls", "alerts"])
        url = f"{cloud.api.url}/v1/controls/kill-switch"
        on = httpx.post(url, headers=headers, json={"active": True, "reason": "live test"}, timeout=30)
        assert on.status_code == 200, on.text
        control = client.wait("the kill switch", lambda fs: [f for f in fs if f.get("channel") == "controls"])[0]
        assert control["data"]["active"] is True and control["data"]["reason"] == "live test"
        alert = client.wait(
            "its alert",
            lambda fs: [f for f in fs if f.get("channel") == "alerts" and f["data"]["kind"] == "control_changed"],
        )[0]
        assert alert["data"]["severity"] == "critical" and "live test" in alert["data"]["message"]
    finally:
        httpx.post(
            f"{cloud.api.url}/v1/controls/kill-switch", headers=headers, json={"active": False}, timeout=30
        ).raise_for_status()
        client.close()


def test_a_bad_token_is_refused_at_connect(cloud: LocalCloud, tmp_path: Path) -> None:
    assert cloud.ws is not None
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{cloud.ws.url}/?token=not-a-jwt", open_timeout=10)
    assert refused.value.response.status_code == 401
