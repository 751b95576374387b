"""The API Gateway WebSocket routes, framework-free: $connect, $disconnect, $default.

Event fields read (API Gateway WebSocket proxy events):
- `requestContext.connectionId` (all routes), `requestContext.requestTimeEpoch` (ms; "now", design rule 6,
  the clock only when absent), `requestContext.domainName` and `requestContext.stage` ($default: where
  replies go);
- `queryStringParameters.token` ($connect): the JWT, as the browser WebSocket API cannot send headers;
- `body` and `isBase64Encoded` ($default): the client's frame.

Replies to $default frames are posted back through the API Gateway Management API
(`POST {endpoint}/@connections/{connectionId}`) where endpoint is `$TRADEFLOW_WS_MANAGEMENT_URL` when set
(the local gateway), else `https://{domainName}/{stage}`. A 410 Gone deletes the connection.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from tradeflow.api.auth import AuthError, AuthSettings, KeysUnavailableError, TokenVerifier
from tradeflow.realtime import MANAGEMENT_URL_ENV
from tradeflow.realtime.connections import Connection, ConnectionRepository, expiry
from tradeflow.realtime.protocol import (
    ClientFrame,
    ErrorReply,
    FrameError,
    PongReply,
    SubscriptionReply,
    parse_frame,
    pong,
)

_AUTH_ENV: Final = (
    "TRADEFLOW_AUTH_JWKS_URL",
    "TRADEFLOW_AUTH_ISSUER",
    "TRADEFLOW_AUTH_AUDIENCE",
    "TRADEFLOW_DEV_KEY_FILE",
)


class ConnectionGone(Exception):
    """The client is no longer connected (the Management API answered 410 Gone)."""


class Poster(Protocol):
    """Sends one frame to one connection; raises ConnectionGone when it is no longer there."""

    def post(self, endpoint: str, connection_id: str, data: bytes) -> None: ...


class ManagementApiPoster:
    """`apigatewaymanagementapi.post_to_connection`, one boto3 client per endpoint (created on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def _client(self, endpoint: str) -> Any:
        with self._lock:
            if endpoint not in self._clients:
                import boto3
                from botocore.config import Config

                config = Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=2,
                    read_timeout=5,
                    max_pool_connections=64,  # one per fan-out thread (see realtime.broadcast), and then some
                )
                self._clients[endpoint] = boto3.session.Session().client(
                    "apigatewaymanagementapi", endpoint_url=endpoint, config=config
                )
            return self._clients[endpoint]

    def post(self, endpoint: str, connection_id: str, data: bytes) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client(endpoint).post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") == "GoneException" or status == 410:
                raise ConnectionGone(connection_id) from exc
            raise


def management_endpoint(event: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """Where replies to this event's connection are posted (see the module doc)."""
    env = os.environ if environ is None else environ
    configured = env.get(MANAGEMENT_URL_ENV, "").strip()
    if configured:
        return configured.rstrip("/")
    ctx = event.get("requestContext") or {}
    domain, stage = ctx.get("domainName"), ctx.get("stage")
    if not domain or not stage:
        raise ValueError(f"requestContext.domainName and .stage are required (or set {MANAGEMENT_URL_ENV})")
    return f"https://{domain}/{stage}"


@dataclass(frozen=True)
class Outcome:
    """What a route did: the status to return to API Gateway, and what to log."""

    status: int
    code: str  # stable: connected, refused, disconnected, subscribed, pong, error codes...
    reason: str | None = None
    tenant_id: str | None = None
    connection_id: str | None = None
    reply: SubscriptionReply | PongReply | ErrorReply | None = None
    delivered: bool = False  # the reply reached the client
    extra: dict[str, Any] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        return {"statusCode": self.status}


def event_time(event: Mapping[str, Any], clock: Callable[[], datetime]) -> datetime:
    epoch_ms = (event.get("requestContext") or {}).get("requestTimeEpoch")
    if isinstance(epoch_ms, int | float) and not isinstance(epoch_ms, bool) and epoch_ms > 0:
        return datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return clock()


def _connection_id(event: Mapping[str, Any]) -> str:
    connection_id = (event.get("requestContext") or {}).get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        raise ValueError("requestContext.connectionId is missing")
    return connection_id


def _body(event: Mapping[str, Any]) -> str | bytes | None:
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise FrameError("invalid_json", "binary frame is not valid base64") from None
    return body if isinstance(body, str | bytes) or body is None else str(body)


class VerifierCache:
    """One TokenVerifier per auth configuration (rebuilt when the environment's auth settings change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, ...] | None = None
        self._verifier: TokenVerifier | None = None

    def __call__(self) -> TokenVerifier:
        key = tuple(os.environ.get(name, "") for name in _AUTH_ENV)
        with self._lock:
            if self._verifier is None or key != self._key:
                self._verifier = TokenVerifier(AuthSettings.from_env())
                self._key = key
            return self._verifier


class RealtimeService:
    def __init__(
        self,
        connections: ConnectionRepository | None = None,
        verifier: Callable[[], TokenVerifier] | None = None,
        poster: Poster | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.connections = connections or ConnectionRepository()
        self.verifier = verifier or VerifierCache()
        self.poster: Poster = poster or ManagementApiPoster()
        self.clock = clock

    # -- $connect ----------------------------------------------------------------------------------

    def connect(self, event: Mapping[str, Any]) -> Outcome:
        """Authenticate `queryStringParameters.token` and store the connection; 401 (refused) otherwise."""
        connection_id = _connection_id(event)
        now = event_time(event, self.clock)
        token = (event.get("queryStringParameters") or {}).get("token")
        if not token:
            return Outcome(401, "missing_token", "missing token query parameter (?token=<JWT>)", None, connection_id)
        try:
            principal = self.verifier().verify(token)
        except KeysUnavailableError as exc:
            return Outcome(503, exc.code, exc.reason, None, connection_id)
        except AuthError as exc:
            return Outcome(401, exc.code, exc.reason, None, connection_id)
        connection = Connection(
            tenant_id=principal.tenant_id,
            connection_id=connection_id,
            user_id=principal.user_id,
            connected_at=now,
            expires_at=expiry(now),
        )
        self.connections.put(connection)
        return Outcome(200, "connected", None, principal.tenant_id, connection_id, extra={"user_id": principal.user_id})

    # -- $disconnect -------------------------------------------------------------------------------

    def disconnect(self, event: Mapping[str, Any]) -> Outcome:
        connection_id = _connection_id(event)
        connection = self.connections.get_by_id(connection_id)
        if connection is None:
            return Outcome(200, "unknown_connection", None, None, connection_id)
        self.connections.delete(connection.tenant_id, connection_id)
        return Outcome(200, "disconnected", None, connection.tenant_id, connection_id)

    # -- $default ----------------------------------------------------------------------------------

    def default(self, event: Mapping[str, Any]) -> Outcome:
        """Parse the frame, act on it for the connection's own tenant, and post the reply back.
        A bad frame gets an error reply (status 400) and the connection stays."""
        connection_id = _connection_id(event)
        now = event_time(event, self.clock)
        endpoint = management_endpoint(event)
        connection = self.connections.get_by_id(connection_id)
        if connection is None or connection.expired(now):
            outcome = Outcome(
                410,
                "not_connected",
                "this connection is not registered (expired or never authenticated); reconnect",
                None,
                connection_id,
                ErrorReply(code="not_connected", message="connection not registered (expired?); reconnect"),
            )
            return self._deliver(outcome, endpoint, connection)
        try:
            frame = parse_frame(_body(event))
        except FrameError as exc:
            self.connections.touch(connection.tenant_id, connection_id, now)
            outcome = Outcome(400, exc.code, exc.message, connection.tenant_id, connection_id, exc.reply())
            return self._deliver(outcome, endpoint, connection)
        outcome = self._act(connection, frame, now)
        return self._deliver(outcome, endpoint, connection)

    def _act(self, connection: Connection, frame: ClientFrame, now: datetime) -> Outcome:
        tenant, connection_id = connection.tenant_id, connection.connection_id
        if frame.action == "ping":
            self.connections.touch(tenant, connection_id, now)
            return Outcome(200, "pong", None, tenant, connection_id, pong(now, frame.id))
        change = self.connections.subscribe if frame.action == "subscribe" else self.connections.unsubscribe
        now_subscribed = change(tenant, connection_id, frame.channels, now)
        if now_subscribed is None:  # deleted between the lookup and the update (disconnect raced us)
            reply = ErrorReply(code="not_connected", message="connection closed while subscribing", id=frame.id)
            return Outcome(410, "not_connected", "connection vanished", tenant, connection_id, reply)
        kind = "subscribed" if frame.action == "subscribe" else "unsubscribed"
        reply_ok = SubscriptionReply(
            type=kind, channels=list(frame.channels), subscriptions=sorted(now_subscribed), id=frame.id
        )
        return Outcome(200, kind, None, tenant, connection_id, reply_ok, extra={"channels": list(frame.channels)})

    def _deliver(self, outcome: Outcome, endpoint: str, connection: Connection | None) -> Outcome:
        if outcome.reply is None or outcome.connection_id is None:
            return outcome
        try:
            self.poster.post(endpoint, outcome.connection_id, outcome.reply.to_bytes())
        except ConnectionGone:
            if connection is not None:
                self.connections.delete(connection.tenant_id, connection.connection_id)
            return replace(outcome, status=410, reason="client gone (410) before the reply; connection deleted")
        return replace(outcome, delivered=True)
