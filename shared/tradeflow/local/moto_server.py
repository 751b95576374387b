"""moto's server, in this process, on 127.0.0.1.

moto's own `ThreadedMotoServer` answers in HTTP/1.0, so every boto3 call opens a new TCP connection
and the server starts a new thread for it. Serving the same moto application with an HTTP/1.1 request
handler lets botocore keep its connections alive: about half the cost of each call here.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from tradeflow.local import moto_transactions


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all held open at once while chosen, so two cannot coincide (calling
    `free_port` twice before binding either may return the same port)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _cache_module_list() -> None:
    """moto re-lists its own package folder (~130 directories, a stat each) on every request to
    route it; the list cannot change while the process runs, so compute it once."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_tradeflow_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    cached._tradeflow_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached


class _SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time.

    DynamoDB makes each conditional write atomic and transactions serializable; moto checks conditions
    and writes item by item without a lock, and rolls a cancelled transaction back by restoring a
    snapshot of the whole table, which can erase another request's committed writes. The local cloud
    runs handlers on several threads, so it serialises DynamoDB requests to keep DynamoDB's guarantees
    (the GIL serialises moto's pure-Python work anyway: this costs next to nothing)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self.lock:
                return list(self.app(environ, start_response))  # the whole response under the lock
        return self.app(environ, start_response)


class _KeepAliveHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: one line per AWS call would drown everything else."""


class MotoServer:
    def __init__(self, port: int = 5000) -> None:
        self.port = port or free_port()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                raise RuntimeError(f"port {self.port} is in use: is another local cloud running? (use --aws-port)")
        except OSError:
            pass
        _cache_module_list()
        moto_transactions.install()
        app = _SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=_KeepAliveHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        # moto keeps its state in process-wide backends: a new server starts from a clean slate, not
        # with what an earlier server in this process (a test, a benchmark) left behind.
        self.reset()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        """Drop every resource (moto's reset API): tests use it between cases."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
