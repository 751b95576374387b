"""Lazily created, cached boto3 clients.

Endpoints come from the standard environment (`AWS_ENDPOINT_URL`, `AWS_REGION`), so the same code talks
to AWS in Lambda and to moto's server in the local cloud and tests. Clients are created on first use:
importing a handler must stay cheap (design rule 9), and creation is serialised because boto3's default
session is not thread-safe (the local cloud invokes handlers from several threads). The cache follows
`AWS_ENDPOINT_URL`: a client made for another endpoint is never handed out after the variable changed
(tests and benchmarks start and stop local clouds, and restore the environment, in one process).
"""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}  # (service, AWS_ENDPOINT_URL when made) -> client


def client(service: str) -> Any:
    key = (service, os.environ.get("AWS_ENDPOINT_URL"))
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": 4},
                connect_timeout=5,
                read_timeout=20,
                max_pool_connections=32,
            )
            # The endpoint is passed explicitly (not only read from the environment by botocore) because an
            # explicit endpoint also turns off endpoint discovery: timestream-write would otherwise send its
            # writes to the address the discovery call returns, not to the local endpoint.
            _clients[key] = boto3.session.Session().client(service, config=config, endpoint_url=key[1])
        return _clients[key]


def reset_clients() -> None:
    """Forget cached clients (tests and the local cloud call this after changing the endpoint)."""
    with _lock:
        _clients.clear()
