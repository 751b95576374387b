"""The local WebSocket gateway with real WebSocket clients and stub handlers: API Gateway-shaped
$connect / $default / $disconnect events, refusal at connect, the @connections management API through
boto3's own client, and a client that does not read never holding up the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tradeflow.local.ws_gateway import WsGateway, websocket_routes

ROUTES = {"$connect": "ws_connect", "$disconnect": "ws_disconnect", "$default": "ws_default"}


class FakeLambdas:
    """Records every event; `responses[name]` computes the handler's answer."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.responses: dict[str, Callable[[dict[str, Any]], Any]] = {}

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        with self.lock:
            self.events.append((name, event))
        respond = self.responses.get(name)
        return respond(event) if respond else {"statusCode": 200}

    def of(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for n, e in self.events if n == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.of(name)) < count:
            assert time.monotonic() < deadline, f"{name}: {len(self.of(name))} of {count} events"
            time.sleep(0.01)
        return self.of(name)


@pytest.fixture
def fake() -> FakeLambdas:
    return FakeLambdas()


@pytest.fixture
def gateway(fake: FakeLambdas) -> Iterator[WsGateway]:
    gw = WsGateway(fake, port=0, routes=ROUTES, close_timeout=0.5)
    gw.start()
    yield gw
    gw.stop()


def management(gateway: WsGateway) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=gateway.management_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


def open_socket(gateway: WsGateway, fake: FakeLambdas, name: str, **kwargs: Any) -> tuple[ClientConnection, str]:
    """A connected client and its connection id (from its $connect event)."""
    ws = connect(f"{gateway.url}/?token=tok-{name}&name={name}", open_timeout=5, **kwargs)
    for event in fake.of("ws_connect"):
        if (event["queryStringParameters"] or {}).get("name") == name:
            return ws, event["requestContext"]["connectionId"]
    raise AssertionError(f"no $connect event for {name}")


def test_the_catalogue_maps_the_three_routes() -> None:
    assert websocket_routes() == ROUTES


def test_connect_event_is_api_gateway_shaped_and_accepts(gateway: WsGateway, fake: FakeLambdas) -> None:
    before = int(time.time() * 1000)
    ws, connection_id = open_socket(gateway, fake, "a", additional_headers={"X-Client": "test"})
    with ws:
        (event,) = fake.of("ws_connect")
        context = event["requestContext"]
        assert context["routeKey"] == "$connect"
        assert context["eventType"] == "CONNECT"
        assert context["connectionId"] == connection_id
        assert len(connection_id) == 16 and connection_id.endswith("=")
        assert "/" not in connection_id and "+" not in connection_id
        assert context["domainName"] == f"127.0.0.1:{gateway.port}"
        assert context["stage"] == "local" and context["apiId"] == "local"
        assert before <= context["requestTimeEpoch"] <= int(time.time() * 1000)
        assert context["identity"]["sourceIp"] == "127.0.0.1"
        assert event["queryStringParameters"] == {"token": "tok-a", "name": "a"}
        assert event["multiValueQueryStringParameters"] == {"token": ["tok-a"], "name": ["a"]}
        assert event["headers"]["X-Client"] == "test"
        assert event["isBase64Encoded"] is False
        assert gateway.connection_ids() == [connection_id]


@pytest.mark.parametrize("status", [401, 403])
def test_a_non_2xx_connect_response_refuses_the_upgrade(gateway: WsGateway, fake: FakeLambdas, status: int) -> None:
    fake.responses["ws_connect"] = lambda event: {"statusCode": status, "body": "bad token"}
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{gateway.url}/?token=nope", open_timeout=5)
    assert refused.value.response.status_code == status
    assert b"bad token" in refused.value.response.body
    assert gateway.connection_ids() == []
    time.sleep(0.1)
    assert fake.of("ws_disconnect") == []  # never connected: no $disconnect


def test_a_failing_connect_handler_refuses_with_500(gateway: WsGateway, fake: FakeLambdas) -> None:
    def boom(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    fake.responses["ws_connect"] = boom
    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.url, open_timeout=5)
    assert refused.value.response.status_code == 500


def test_text_frames_become_default_events_and_a_returned_body_is_sent_back(
    gateway: WsGateway, fake: FakeLambdas
) -> None:
    fake.responses["ws_default"] = lambda event: {"statusCode": 200, "body": f"echo {event['body']}"}
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        ws.send('{"action": "ping"}')
        assert ws.recv(timeout=5) == 'echo {"action": "ping"}'
        ws.send("second")
        assert ws.recv(timeout=5) == "echo second"
        first, second = fake.of("ws_default")
        assert first["body"] == '{"action": "ping"}' and second["body"] == "second"
        context = first["requestContext"]
        assert context["routeKey"] == "$default"
        assert context["eventType"] == "MESSAGE"
        assert context["messageDirection"] == "IN"
        assert context["connectionId"] == connection_id
        assert context["domainName"] == gateway.domain_name and context["stage"] == "local"
        assert isinstance(context["requestTimeEpoch"], int) and context["messageId"]
        assert first["isBase64Encoded"] is False


def test_binary_and_oversized_frames_get_an_error_frame_and_keep_the_connection(
    gateway: WsGateway, fake: FakeLambdas
) -> None:
    ws, _ = open_socket(gateway, fake, "a")
    with ws:
        ws.send(b"\x00\x01")
        assert '"binary_frame"' in str(ws.recv(timeout=5))
        ws.send("x" * (128 * 1024 + 1))
        assert '"message_too_large"' in str(ws.recv(timeout=5))
        assert fake.of("ws_default") == []  # neither reached the handler
        fake.responses["ws_default"] = lambda event: {"statusCode": 200, "body": "still here"}
        ws.send("hello")
        assert ws.recv(timeout=5) == "still here"


def test_closing_the_socket_runs_disconnect(gateway: WsGateway, fake: FakeLambdas) -> None:
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        pass  # leaving the block closes the socket (1000)
    (event,) = fake.wait_for("ws_disconnect")
    context = event["requestContext"]
    assert context["routeKey"] == "$disconnect"
    assert context["eventType"] == "DISCONNECT"
    assert context["connectionId"] == connection_id
    assert context["disconnectStatusCode"] == 1000
    assert "disconnectReason" in context
    assert event["headers"]  # the upgrade request's headers, like API Gateway
    assert gateway.connection_ids() == []


def test_boto3_posts_to_a_connection_and_gets_gone_after_close(gateway: WsGateway, fake: FakeLambdas) -> None:
    api = management(gateway)
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        api.post_to_connection(ConnectionId=connection_id, Data=b'{"type": "fill"}')
        assert ws.recv(timeout=5) == '{"type": "fill"}'
        info = api.get_connection(ConnectionId=connection_id)
        assert isinstance(info["ConnectedAt"], datetime) and isinstance(info["LastActiveAt"], datetime)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
    fake.wait_for("ws_disconnect")
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(api.exceptions.GoneException):
        api.get_connection(ConnectionId=connection_id)
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId="neverExisted0A=", Data=b"x")


def test_a_stage_path_in_the_endpoint_works_too(gateway: WsGateway, fake: FakeLambdas) -> None:
    api = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"{gateway.management_url}/local",  # like https://{api}.execute-api.../{stage}
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        api.post_to_connection(ConnectionId=connection_id, Data=b"hi")
        assert ws.recv(timeout=5) == "hi"


def test_delete_connection_closes_the_socket(gateway: WsGateway, fake: FakeLambdas) -> None:
    api = management(gateway)
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        api.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    (event,) = fake.wait_for("ws_disconnect")
    assert event["requestContext"]["connectionId"] == connection_id
    with pytest.raises(api.exceptions.GoneException):
        api.delete_connection(ConnectionId=connection_id)


def test_a_slow_handler_does_not_hold_up_other_sockets(gateway: WsGateway, fake: FakeLambdas) -> None:
    release = threading.Event()

    def default(event: dict[str, Any]) -> Any:
        if event["body"] == "slow":
            release.wait(10)
        return {"statusCode": 200, "body": f"done {event['body']}"}

    fake.responses["ws_default"] = default
    slow, _ = open_socket(gateway, fake, "slow")
    fast, _ = open_socket(gateway, fake, "fast")
    with slow, fast:
        slow.send("slow")
        fast.send("fast")
        assert fast.recv(timeout=3) == "done fast"  # while the slow one is still running
        release.set()
        assert slow.recv(timeout=5) == "done slow"


def test_a_client_that_does_not_read_never_blocks_the_others(fake: FakeLambdas) -> None:
    gateway = WsGateway(fake, port=0, routes=ROUTES, send_queue_size=8, close_timeout=0.5)
    gateway.start()
    try:
        api = management(gateway)
        # the stuck client buffers at most one message and stops reading the socket
        stuck, stuck_id = open_socket(gateway, fake, "stuck", max_queue=1, close_timeout=0.5)
        live, live_id = open_socket(gateway, fake, "live")
        with stuck, live:
            chunk = b"x" * (100 * 1024)
            accepted = 0
            started = time.monotonic()
            while gateway.post(stuck_id, chunk):  # each post returns at once, queued or refused
                accepted += 1
                assert accepted < 10_000, "the stuck client was never dropped"
            assert time.monotonic() - started < 10
            # TCP buffers and the bounded queue filled up: the stuck client was dropped, not waited for
            assert gateway.dropped == 1
            with pytest.raises(api.exceptions.GoneException):
                api.post_to_connection(ConnectionId=stuck_id, Data=b"more")
            for n in range(20):
                api.post_to_connection(ConnectionId=live_id, Data=f"update {n}".encode())
            assert [live.recv(timeout=5) for _ in range(20)] == [f"update {n}" for n in range(20)]
            (event,) = fake.wait_for("ws_disconnect")
            assert event["requestContext"]["connectionId"] == stuck_id
            assert event["requestContext"]["disconnectStatusCode"] == 1008
            assert event["requestContext"]["disconnectReason"] == "send queue overflow"
            assert gateway.connection_ids() == [live_id]
    finally:
        gateway.stop()


def test_stopping_the_gateway_disconnects_every_client(fake: FakeLambdas) -> None:
    gateway = WsGateway(fake, port=0, routes=ROUTES, close_timeout=0.5)
    gateway.start()
    ws, connection_id = open_socket(gateway, fake, "a")
    with ws:
        gateway.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    (event,) = fake.of("ws_disconnect")
    assert event["requestContext"]["connectionId"] == connection_id
