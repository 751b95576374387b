"""The WebSocket handlers ($connect, $default, $disconnect) on moto, with API Gateway-shaped events built
from the samples in events/: a valid token stores the connection, anything else is refused (401) and
stores nothing; frames subscribe/unsubscribe atomically, ping answers pong, bad frames get an error reply
and the connection stays; replies go through the Management API, a 410 deletes the connection; a
tenant's subscribers never include another tenant's connections."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tradeflow.api.dev_issuer import DevIssuer
from tradeflow.local.lambdas import repo_root
from tradeflow.realtime.connections import Connection, ConnectionRepository, expiry
from tradeflow.realtime.service import MANAGEMENT_URL_ENV, ConnectionGone, ManagementApiPoster, management_endpoint

from helpers import Context, handler, handler_globals

EVENTS = repo_root() / "events"
NOW = datetime(2026, 1, 5, 14, 31, tzinfo=UTC)
ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/local"


class Recorder:
    """A Management API stand-in: records what was posted; connections in `gone` answer 410."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, dict[str, Any]]] = []
        self.gone: set[str] = set()

    def post(self, endpoint: str, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        self.posted.append((endpoint, connection_id, json.loads(data)))

    def last(self) -> dict[str, Any]:
        return self.posted[-1][2]


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def _at(event: dict[str, Any], at: datetime) -> dict[str, Any]:
    event["requestContext"]["requestTimeEpoch"] = int(at.timestamp() * 1000)
    return event


def connect_event(token: str | None, connection_id: str = "conn-A1=", at: datetime = NOW) -> dict[str, Any]:
    event = copy.deepcopy(_sample("ws_connect-connect.json"))
    event["requestContext"]["connectionId"] = connection_id
    event["queryStringParameters"] = None if token is None else {"token": token}
    event["multiValueQueryStringParameters"] = None if token is None else {"token": [token]}
    return _at(event, at)


def message_event(body: Any, connection_id: str = "conn-A1=", at: datetime = NOW) -> dict[str, Any]:
    event = copy.deepcopy(_sample("ws_default-subscribe.json"))
    event["requestContext"]["connectionId"] = connection_id
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    return _at(event, at)


def disconnect_event(connection_id: str = "conn-A1=") -> dict[str, Any]:
    event = copy.deepcopy(_sample("ws_disconnect-disconnect.json"))
    event["requestContext"]["connectionId"] = connection_id
    return event


@pytest.fixture
def issuer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DevIssuer:
    key_file = tmp_path / "dev-issuer.pem"
    monkeypatch.setenv("TRADEFLOW_DEV_KEY_FILE", str(key_file))
    for name in ("TRADEFLOW_AUTH_JWKS_URL", "TRADEFLOW_AUTH_ISSUER", "TRADEFLOW_AUTH_AUDIENCE", MANAGEMENT_URL_ENV):
        monkeypatch.delenv(name, raising=False)
    return DevIssuer(key_file)


@pytest.fixture
def poster(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(handler_globals("ws_default")["service"], "poster", recorder)
    return recorder


def connect(issuer: DevIssuer, tenant: str = "acme", user: str = "alice", connection_id: str = "conn-A1=") -> None:
    token = issuer.issue(tenant, user)  # verified against the wall clock, like any JWT
    assert handler("ws_connect")(connect_event(token, connection_id), Context()) == {"statusCode": 200}


def send(body: Any, connection_id: str = "conn-A1=", at: datetime = NOW) -> dict[str, Any]:
    result: dict[str, Any] = handler("ws_default")(message_event(body, connection_id, at), Context())
    return result


# -- $connect ------------------------------------------------------------------------------------


def test_connect_with_a_valid_token_stores_the_connection(aws: object, issuer: DevIssuer) -> None:
    connect(issuer)
    stored = ConnectionRepository().get_by_id("conn-A1=")
    assert stored == Connection(
        tenant_id="acme",
        connection_id="conn-A1=",
        user_id="alice",
        connected_at=NOW,  # the event's requestTimeEpoch, not the wall clock
        expires_at=expiry(NOW),
    )
    assert stored.expires_at == int((NOW + timedelta(hours=2)).timestamp())


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "expired", "foreign_key"])
def test_connect_without_a_good_token_is_refused_and_stores_nothing(
    aws: object, issuer: DevIssuer, tmp_path: Path, case: str
) -> None:
    token = {
        "missing": None,
        "empty": "",
        "garbage": "not.a.jwt",
        "expired": issuer.issue("acme", "alice", ttl_seconds=60, now=datetime.now(UTC) - timedelta(hours=1)),
        "foreign_key": DevIssuer(tmp_path / "other.pem").issue("acme", "alice"),
    }[case]
    assert handler("ws_connect")(connect_event(token), Context()) == {"statusCode": 401}
    assert ConnectionRepository().get_by_id("conn-A1=") is None


# -- $default ------------------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_update_the_set(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    connect(issuer)
    assert send({"action": "subscribe", "channels": ["orders", "fills"], "id": "s1"}) == {"statusCode": 200}
    assert poster.posted[-1][:2] == (ENDPOINT, "conn-A1=")  # https://{domainName}/{stage}
    assert poster.last() == {
        "type": "subscribed",
        "channels": ["orders", "fills"],
        "subscriptions": ["fills", "orders"],
        "id": "s1",
    }
    send({"action": "subscribe", "channels": ["quotes:GOOG", "orders"]})
    assert poster.last()["subscriptions"] == ["fills", "orders", "quotes:GOOG"]
    send({"action": "unsubscribe", "channels": ["orders", "alerts"]})  # unsubscribing the unsubscribed is fine
    assert poster.last() == {
        "type": "unsubscribed",
        "channels": ["orders", "alerts"],
        "subscriptions": ["fills", "quotes:GOOG"],
    }
    send({"action": "unsubscribe", "channels": ["fills", "quotes:GOOG"]})
    assert poster.last()["subscriptions"] == []
    stored = ConnectionRepository().get("acme", "conn-A1=")
    assert stored is not None and stored.subscriptions == frozenset()


def test_sample_subscribe_event(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    sample = _sample("ws_default-subscribe.json")
    connect(issuer, connection_id=sample["requestContext"]["connectionId"])
    assert handler("ws_default")(sample, Context()) == {"statusCode": 200}
    assert poster.last()["subscriptions"] == ["fills", "orders", "positions", "quotes:GOOG"]
    assert handler("ws_disconnect")(_sample("ws_disconnect-disconnect.json"), Context()) == {"statusCode": 200}
    assert ConnectionRepository().get_by_id(sample["requestContext"]["connectionId"]) is None


def test_ping_answers_pong_and_refreshes_the_ttl(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    connect(issuer)
    later = NOW + timedelta(minutes=30)
    assert send({"action": "ping", "id": "p"}, at=later) == {"statusCode": 200}
    assert poster.last() == {"type": "pong", "ts": "2026-01-05T15:01:00.000000Z", "id": "p"}
    stored = ConnectionRepository().get("acme", "conn-A1=")
    assert stored is not None and stored.expires_at == expiry(later)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("this is not json", "invalid_json", None),
        ({"action": "dance"}, "unknown_action", "action"),
        ({"action": "subscribe", "channels": ["orders", "trades"]}, "unknown_channel", "channels[1]"),
        ({"action": "subscribe", "channels": ["quotes:NOT A SYMBOL"]}, "invalid_symbol", "channels[0]"),
        (json.dumps({"action": "ping"}) + " " * 40_000, "frame_too_large", None),
        ("", "empty_frame", None),
    ],
)
def test_bad_frames_get_an_error_reply_and_the_connection_stays(
    aws: object, issuer: DevIssuer, poster: Recorder, body: Any, code: str, field: str | None
) -> None:
    connect(issuer)
    send({"action": "subscribe", "channels": ["orders"]})
    assert send(body) == {"statusCode": 400}
    reply = poster.last()
    assert reply["type"] == "error" and reply["code"] == code and reply.get("field") == field
    if code in {"unknown_action", "unknown_channel"}:
        assert reply["valid"] and all(v in reply["message"] for v in reply["valid"])
    stored = ConnectionRepository().get("acme", "conn-A1=")
    assert stored is not None and stored.subscriptions == {"orders"}  # untouched, still connected
    assert send({"action": "ping"}) == {"statusCode": 200}  # and still served


def test_base64_binary_frame_is_decoded(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    import base64

    connect(issuer)
    event = message_event(base64.b64encode(b'{"action": "ping"}').decode())
    event["isBase64Encoded"] = True
    assert handler("ws_default")(event, Context()) == {"statusCode": 200}
    assert poster.last()["type"] == "pong"


def test_frame_from_an_unknown_connection_gets_an_error(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    assert send({"action": "ping"}, connection_id="never-connected") == {"statusCode": 410}
    assert poster.last()["code"] == "not_connected"


def test_gone_client_is_deleted(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    connect(issuer)
    poster.gone.add("conn-A1=")
    assert send({"action": "ping"}) == {"statusCode": 410}
    assert ConnectionRepository().get_by_id("conn-A1=") is None


def test_management_url_env_overrides_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    event = message_event({"action": "ping"})
    assert management_endpoint(event, {}) == ENDPOINT
    assert management_endpoint(event, {MANAGEMENT_URL_ENV: "http://127.0.0.1:8001/"}) == "http://127.0.0.1:8001"


def test_real_management_client_posts_through_moto(
    aws: Any, issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default poster (boto3 apigatewaymanagementapi) against moto's Management API."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    monkeypatch.setenv(MANAGEMENT_URL_ENV, aws.endpoint)
    monkeypatch.setattr(handler_globals("ws_default")["service"], "poster", ManagementApiPoster())
    connect(issuer, connection_id="connB")
    assert send({"action": "ping", "id": "real"}, connection_id="connB") == {"statusCode": 200}
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    assert json.loads(backend.connections["connB"].data)["id"] == "real"


def test_gone_exception_from_the_management_api_is_connection_gone() -> None:
    from botocore.stub import Stubber

    poster = ManagementApiPoster()
    stub = Stubber(poster._client(ENDPOINT))
    stub.add_client_error("post_to_connection", service_error_code="GoneException", http_status_code=410)
    stub.activate()
    with pytest.raises(ConnectionGone):
        poster.post(ENDPOINT, "c1", b"{}")


# -- $disconnect and tenancy ---------------------------------------------------------------------


def test_disconnect_deletes_and_is_idempotent(aws: object, issuer: DevIssuer) -> None:
    connect(issuer)
    assert handler("ws_disconnect")(disconnect_event(), Context()) == {"statusCode": 200}
    assert ConnectionRepository().get_by_id("conn-A1=") is None
    assert handler("ws_disconnect")(disconnect_event(), Context()) == {"statusCode": 200}


def test_subscribers_are_per_tenant(aws: object, issuer: DevIssuer, poster: Recorder) -> None:
    connect(issuer, "acme", "alice", "a1")
    connect(issuer, "acme", "bob", "a2")
    connect(issuer, "globex", "carol", "g1")
    for connection_id in ("a1", "g1"):
        send({"action": "subscribe", "channels": ["fills"]}, connection_id=connection_id)
    send({"action": "subscribe", "channels": ["orders"]}, connection_id="a2")
    repo = ConnectionRepository()
    assert [c.connection_id for c in repo.subscribers("acme", "fills", NOW)] == ["a1"]
    assert [c.connection_id for c in repo.subscribers("globex", "fills", NOW)] == ["g1"]
    assert repo.subscribers("globex", "orders", NOW) == []
    assert repo.subscribers("acme", "fills", NOW + timedelta(hours=3)) == []  # expired (TTL lags): not served
    # A connection's frames act on its own tenant only: globex's unsubscribe leaves acme's a1 alone.
    send({"action": "unsubscribe", "channels": ["fills"]}, connection_id="g1")
    assert [c.connection_id for c in repo.subscribers("acme", "fills", NOW)] == ["a1"]
    assert repo.get("globex", "a1") is None  # another tenant's connection is not found
