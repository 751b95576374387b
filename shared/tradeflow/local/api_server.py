"""The REST API in the local cloud: the same FastAPI app as the Lambda function, under uvicorn on
127.0.0.1 (default port 8000), talking to the local cloud's moto server. Tokens come from the local dev
issuer (`tradeflow local token`), whose key the app trusts."""

from __future__ import annotations

import socket
import threading
import time

from tradeflow.api.app import AppSettings, create_app
from tradeflow.api.dev_issuer import DevIssuer


class ApiServerError(RuntimeError):
    pass


class ApiServer:
    def __init__(self, port: int = 8000, host: str = "127.0.0.1", issuer: DevIssuer | None = None) -> None:
        self.host, self.port = host, port
        self.issuer = issuer or DevIssuer()
        self.server: object | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        import uvicorn

        with socket.socket() as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise ApiServerError(f"port {self.port} is in use: choose another with --api-port")
        app = create_app(AppSettings(auth=self.issuer.settings()))
        # log_config=None: keep the local cloud's logging (its console may wrap stdout) instead of uvicorn's
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="off", log_config=None
        )
        server = uvicorn.Server(config)
        self.server = server
        self.thread = threading.Thread(target=server.run, name="api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ApiServerError(f"the REST API did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True  # type: ignore[attr-defined]
        if self.thread is not None:
            self.thread.join(timeout=10)
