"""The local API Gateway WebSocket API: a real WebSocket server on 127.0.0.1 (default port 8001) that
turns each connection's lifecycle into API Gateway WebSocket-shaped events for the same handlers that
run in AWS, and the API Gateway Management API (`@connections`) that boto3's
`apigatewaymanagementapi` client calls, so a broadcaster works unchanged against it.

Two ports:
- the WebSocket endpoint, `ws://127.0.0.1:<port>/` (`url`); the query string (e.g. `?token=...`)
  reaches the `$connect` handler as `queryStringParameters`;
- the management endpoint, `http://127.0.0.1:<management port>` (`management_url`; an OS-chosen free
  port unless given): `POST|GET|DELETE [/<stage>]/@connections/{id}`. websockets' HTTP parser accepts
  only GET upgrade requests, hence a separate plain HTTP server. The local cloud exports it as
  `TRADEFLOW_WS_MANAGEMENT_URL` (and as boto3's `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`).

Lifecycle (the route -> function map comes from the catalogue's `websocket_route`):
- upgrade request: `$connect` runs before the handshake is accepted (websockets' `process_request`);
  a non-2xx `statusCode` (or a handler error: 500) refuses the upgrade with that HTTP status. A
  response without `statusCode` counts as 200, like API Gateway's Lambda proxy integration.
- each text frame: `$default` with the frame as `body`, in order per connection; a non-empty `body` in
  the handler's response is sent back to the client (a two-way route). Binary frames and frames over
  API Gateway's 128 KiB message limit are answered with an error frame without invoking anything; the
  connection is kept. Frames over `max_frame_bytes` (1 MiB) close the connection (1009).
- close (either side, or the gateway stopping): `$disconnect`.

Handlers are synchronous: they run in a thread pool (`run_in_executor`), never on the event loop, so a
slow handler does not stall other sockets (LocalLambdas still runs one invocation at a time per
function, like one warm Lambda instance).

Sends: each connection has a bounded send queue (`send_queue_size` messages) drained by its own task,
so a slow or dead client never blocks delivery to others nor the management call. When a client's
queue is full, the gateway drops that client: the message is not delivered, the socket is closed with
1008 ("send queue overflow"), the post answers 410 Gone (so the broadcaster forgets the connection),
and `$disconnect` runs."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tradeflow.catalogue import FUNCTIONS
from tradeflow.realtime import CLIENT_URL_ENV, MANAGEMENT_URL_ENV

log = logging.getLogger("tradeflow.local.ws")

BOTO_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message payload limit
STAGE = "local"
API_ID = "local"
_CONNECTIONS_PATH = re.compile(r"^(?:/[^/]+)*/@connections/([^/?]+)$")


class WsGatewayError(RuntimeError):
    pass


class Invoker(Protocol):
    def invoke(self, name: str, event: dict[str, Any]) -> Any: ...


def websocket_routes() -> dict[str, str]:
    """Route key ($connect, $disconnect, $default) -> function name, from the catalogue."""
    return {spec.websocket_route: name for name, spec in FUNCTIONS.items() if spec.websocket_route}


def new_connection_id() -> str:
    """An API Gateway-like connection id (16 base64 characters, e.g. `L0SM9cOFvHcCIhw=`), without `+`
    and `/` so it is safe in a URL path."""
    while True:
        candidate = base64.b64encode(os.urandom(11)).decode()
        if "+" not in candidate and "/" not in candidate:
            return candidate


def _request_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _status_of(response: Any) -> int:
    if isinstance(response, Mapping):
        try:
            return int(response.get("statusCode", 200))
        except (TypeError, ValueError):
            return 500
    return 200


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Refused"


def _error_frame(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, "ts": _iso(int(time.time() * 1000))})


@dataclass
class Connection:
    id: str
    ws: ServerConnection
    source_ip: str
    user_agent: str
    headers: dict[str, str]
    connected_at: int  # epoch ms
    queue: asyncio.Queue[str | bytes]
    last_active_at: int = 0
    closed: bool = False
    sender: asyncio.Task[None] | None = None
    disconnect_code: int | None = None  # set when the gateway closes the socket
    disconnect_reason: str = ""

    def identity(self) -> dict[str, str]:
        return {"sourceIp": self.source_ip, "userAgent": self.user_agent}


@dataclass
class _Pending:
    """What `$connect` saw, kept from the upgrade request until the connection opens."""

    id: str
    connected_at: int
    headers: dict[str, str]
    source_ip: str
    user_agent: str


class WsGateway:
    def __init__(
        self,
        lambdas: Invoker | None = None,
        port: int = 8001,
        host: str = "127.0.0.1",
        management_port: int = 0,
        routes: Mapping[str, str] | None = None,
        send_queue_size: int = 1000,
        max_frame_bytes: int = 1024 * 1024,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        workers: int = 16,
        close_timeout: float = 2.0,
    ) -> None:
        self.lambdas = lambdas
        self.host, self.port, self.management_port = host, port, management_port
        self.routes = dict(routes) if routes is not None else websocket_routes()
        self.send_queue_size = send_queue_size
        self.max_frame_bytes = max_frame_bytes
        self.max_message_bytes = max_message_bytes
        self.close_timeout = close_timeout
        self.connections: dict[str, Connection] = {}
        self.dropped = 0  # clients closed because their send queue overflowed
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws-handler")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: Server | None = None
        self.thread: threading.Thread | None = None
        self.http: ThreadingHTTPServer | None = None
        self.http_thread: threading.Thread | None = None
        self._pending: dict[int, _Pending] = {}  # id(ServerConnection) -> what $connect saw
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    # --- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    # --- start / stop ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if self.port:
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    raise WsGatewayError(f"port {self.port} is in use: choose another with --ws-port")
        self.thread = threading.Thread(target=self._run_loop, name="ws-gateway", daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout) or self._start_error is not None:
            raise WsGatewayError(f"the WebSocket gateway did not start on {self.url}: {self._start_error}")
        self.http = ThreadingHTTPServer((self.host, self.management_port), _management_handler(self))
        self.http.daemon_threads = True
        self.management_port = self.http.server_address[1]
        self.http_thread = threading.Thread(
            target=self.http.serve_forever, args=(0.05,), name="ws-management", daemon=True
        )
        self.http_thread.start()
        log.info("WebSocket gateway on %s, @connections on %s", self.url, self.management_url)

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (each gets its `$disconnect`) and stop both servers."""
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        if self.loop is not None and self._stopped is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self.thread.join(timeout)
        self.executor.shutdown(wait=True, cancel_futures=False)

    def _run_loop(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by start()
            self._start_error = error
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,  # API Gateway does not negotiate permessage-deflate
            max_size=self.max_frame_bytes,
            close_timeout=self.close_timeout,
            server_header="tradeflow-local-ws",
        ) as server:
            self.server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()
            server.close(close_connections=False)
            closing = [self._close(c, 1001, "Going away") for c in list(self.connections.values())]
            await asyncio.gather(*closing, return_exceptions=True)
            await server.wait_closed()

    # --- events ----------------------------------------------------------------------------------

    def _context(
        self, route: str, event_type: str, connection_id: str, connected_at: int, **extra: Any
    ) -> dict[str, Any]:
        now = int(time.time() * 1000)
        context = {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectionId": connection_id,
            "connectedAt": connected_at,
            "domainName": self.domain_name,
            "stage": STAGE,
            "apiId": API_ID,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": _request_time(now),
            "requestTimeEpoch": now,
        }
        context.update(extra)
        return context

    async def _invoke(self, route: str, event: dict[str, Any]) -> Any:
        """The route's function with `event`, in the thread pool. None when no function serves it."""
        name = self.routes.get(route)
        if name is None or self.lambdas is None:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.lambdas.invoke, name, event)

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.lambdas is None:
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "the local cloud is starting\n")
        connected_at = int(time.time() * 1000)
        connection_id = new_connection_id()
        query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
        headers = dict(request.headers.raw_items())
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.raw_items():
            multi_headers.setdefault(key, []).append(value)
        source_ip = str(ws.remote_address[0]) if ws.remote_address else "127.0.0.1"
        user_agent = request.headers.get("User-Agent", "")
        identity = {"sourceIp": source_ip, "userAgent": user_agent}
        event = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "requestContext": self._context("$connect", "CONNECT", connection_id, connected_at, identity=identity),
            "isBase64Encoded": False,
        }
        if "$connect" in self.routes:
            try:
                response = await self._invoke("$connect", event)
            except Exception:
                log.exception("$connect handler failed")
                return ws.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error\n")
            status = _status_of(response)
            if not 200 <= status < 300:
                body = response.get("body") if isinstance(response, Mapping) else None
                return ws.respond(status, f"{body or _phrase(status)}\n")
        self._pending[id(ws)] = _Pending(connection_id, connected_at, headers, source_ip, user_agent)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        pending = self._pending.pop(id(ws), None)
        if pending is None:  # cannot happen: process_request ran
            await ws.close(1011, "no connection record")
            return
        conn = Connection(
            id=pending.id,
            ws=ws,
            source_ip=pending.source_ip,
            user_agent=pending.user_agent,
            headers=pending.headers,
            connected_at=pending.connected_at,
            last_active_at=pending.connected_at,
            queue=asyncio.Queue(maxsize=self.send_queue_size),
        )
        self.connections[conn.id] = conn
        conn.sender = asyncio.create_task(self._send_loop(conn), name=f"ws-send-{conn.id}")
        try:
            async for frame in ws:
                conn.last_active_at = int(time.time() * 1000)
                await self._on_frame(conn, frame)
        except ConnectionClosed:
            pass
        finally:
            await self._forget(conn)

    async def _on_frame(self, conn: Connection, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._enqueue(conn, _error_frame("binary_frame", "binary frames are not supported: send JSON text"))
            return
        if len(frame.encode()) > self.max_message_bytes:
            self._enqueue(
                conn, _error_frame("message_too_large", f"messages are limited to {self.max_message_bytes} bytes")
            )
            return
        event = {
            "requestContext": self._context(
                "$default",
                "MESSAGE",
                conn.id,
                conn.connected_at,
                messageId=new_connection_id(),
                identity=conn.identity(),
            ),
            "body": frame,
            "isBase64Encoded": False,
        }
        try:
            response = await self._invoke("$default", event)
        except Exception:
            log.exception("$default handler failed for %s", conn.id)
            self._enqueue(conn, _error_frame("internal_error", "Internal server error"))
            return
        if isinstance(response, Mapping) and response.get("body"):
            body = response["body"]
            self._enqueue(conn, body if isinstance(body, str) else json.dumps(body))

    async def _forget(self, conn: Connection) -> None:
        """Unregister a closed connection and run `$disconnect` (once)."""
        if self.connections.pop(conn.id, None) is None:
            return
        conn.closed = True
        if conn.sender is not None:
            conn.sender.cancel()
        ws = conn.ws
        if conn.disconnect_code is not None:  # the gateway closed it (dropped, DELETE, stopping)
            code, reason = conn.disconnect_code, conn.disconnect_reason
        else:
            code, reason = (ws.close_code or 1006), (ws.close_reason or "")
        event = {
            "headers": conn.headers,
            "multiValueHeaders": {k: [v] for k, v in conn.headers.items()},
            "requestContext": self._context(
                "$disconnect",
                "DISCONNECT",
                conn.id,
                conn.connected_at,
                identity=conn.identity(),
                disconnectStatusCode=code,
                disconnectReason=reason or "",
            ),
            "isBase64Encoded": False,
        }
        try:
            await self._invoke("$disconnect", event)
        except Exception:
            log.exception("$disconnect handler failed for %s", conn.id)

    # --- sends -----------------------------------------------------------------------------------

    async def _send_loop(self, conn: Connection) -> None:
        try:
            while True:
                message = await conn.queue.get()
                await conn.ws.send(message)
        except ConnectionClosed:
            pass

    def _enqueue(self, conn: Connection, message: str | bytes) -> bool:
        """Queue `message` for `conn` (on the loop). False when the connection is closed or was just
        dropped because its queue is full."""
        if conn.closed:
            return False
        try:
            conn.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            self._drop(conn)
            return False

    def _drop(self, conn: Connection) -> None:
        """Close a client that does not keep up; its `$disconnect` runs when the socket closes."""
        self.dropped += 1
        conn.closed = True
        if conn.sender is not None:
            conn.sender.cancel()
        log.warning("closing WebSocket %s: its send queue is full (%d messages)", conn.id, self.send_queue_size)
        asyncio.get_running_loop().create_task(self._close(conn, 1008, "send queue overflow"))

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        """Close a socket; abort the TCP connection when the close handshake does not finish within
        `close_timeout` (websockets' close() waits for the send buffer to drain, and a client that
        does not read never drains it)."""
        conn.disconnect_code, conn.disconnect_reason = code, reason
        try:
            async with asyncio.timeout(self.close_timeout):
                await conn.ws.close(code, reason)
        except TimeoutError:
            conn.ws.transport.abort()

    async def _post(self, connection_id: str, data: bytes) -> int:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closed:
            return 410
        message: str | bytes
        try:
            message = data.decode()
        except UnicodeDecodeError:
            message = data
        return 200 if self._enqueue(conn, message) else 410

    async def _info(self, connection_id: str) -> dict[str, Any] | None:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closed:
            return None
        return {
            "connectedAt": _iso(conn.connected_at),
            "lastActiveAt": _iso(conn.last_active_at),
            "identity": conn.identity(),
        }

    async def _delete(self, connection_id: str) -> bool:
        conn = self.connections.get(connection_id)
        if conn is None or conn.closed:
            return False
        conn.closed = True
        asyncio.get_running_loop().create_task(self._close(conn, 1000, "closed by @connections DELETE"))
        return True

    def call(self, coroutine: Any, timeout: float = 5.0) -> Any:
        """Run a coroutine on the gateway's loop from another thread and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # --- the Python API (the management endpoint's, for tests and benchmarks) ---------------------

    def post(self, connection_id: str, data: bytes | str) -> bool:
        """Queue `data` for a connection; False when it is gone (or was dropped for overflowing)."""
        payload = data.encode() if isinstance(data, str) else data
        return bool(self.call(self._post(connection_id, payload)) == 200)

    def connection_ids(self) -> list[str]:
        return list(self.connections)


def _management_handler(gateway: WsGateway) -> type[BaseHTTPRequestHandler]:
    class ManagementHandler(BaseHTTPRequestHandler):
        """`@connections` of the API Gateway Management API (rest-json, errors as
        `x-amzn-ErrorType` + `{"message"}` like AWS; request signatures are not checked)."""

        protocol_version = "HTTP/1.1"
        server_version = "tradeflow-local-ws"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("@connections %s", format % args)

        def _connection_id(self) -> str | None:
            match = _CONNECTIONS_PATH.match(urlsplit(self.path).path)
            return unquote(match.group(1)) if match else None

        def _reply(self, status: int, body: dict[str, Any] | None = None, error: str | None = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.end_headers()
            self.wfile.write(payload)

        def _gone(self) -> None:
            self._reply(410, {"message": None, "__type": "GoneException"}, "GoneException")

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _route(self) -> str | None:
            connection_id = self._connection_id()
            if connection_id is None:
                self._body()
                self._reply(404, {"message": f"no route for {self.path}"}, "NotFoundException")
            return connection_id

        def do_POST(self) -> None:
            connection_id = self._route()
            if connection_id is None:
                return
            data = self._body()
            if len(data) > gateway.max_message_bytes:
                self._reply(413, {"message": "Message too long"}, "PayloadTooLargeException")
                return
            status = gateway.call(gateway._post(connection_id, data))
            if status == 410:
                self._gone()
            else:
                self._reply(200)

        def do_GET(self) -> None:
            connection_id = self._route()
            if connection_id is None:
                return
            info = gateway.call(gateway._info(connection_id))
            if info is None:
                self._gone()
            else:
                self._reply(200, info)

        def do_DELETE(self) -> None:
            connection_id = self._route()
            if connection_id is None:
                return
            if gateway.call(gateway._delete(connection_id)):
                self._reply(204)
            else:
                self._gone()

    return ManagementHandler


def export_management_url(gateway: WsGateway) -> None:
    """Point the handlers (`TRADEFLOW_WS_MANAGEMENT_URL`) and any boto3 `apigatewaymanagementapi`
    client without an explicit endpoint at the gateway's management endpoint, and tell the dashboard
    where clients connect (`TRADEFLOW_WS_URL`)."""
    os.environ[MANAGEMENT_URL_ENV] = gateway.management_url
    os.environ[BOTO_ENDPOINT_ENV] = gateway.management_url
    os.environ[CLIENT_URL_ENV] = gateway.url


__all__ = ["WsGateway", "WsGatewayError", "export_management_url", "websocket_routes"]
