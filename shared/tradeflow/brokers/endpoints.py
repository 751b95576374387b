"""Where the broker adapters send their requests.

In AWS nothing is set and every SDK talks to its broker's real endpoints (Alpaca's paper or live API as
the account says; the exchange's sandbox or production API). The local cloud and the tests point the
real SDKs at local stubs of the brokers' APIs by setting `TRADEFLOW_BROKER_ENDPOINTS` to a JSON object
`{"alpaca": "http://127.0.0.1:9100", "binance": "http://127.0.0.1:9101"}` (broker or ccxt exchange id
-> base URL; the adapters keep every path and swap only scheme and host, `ws://` for streams).

This is an operator's setting, read from the process environment: a tenant can never choose where
its credentials are sent.
"""

from __future__ import annotations

import json
import os

ENDPOINTS_ENV = "TRADEFLOW_BROKER_ENDPOINTS"


def endpoint_override(broker: str) -> str | None:
    """The base URL that replaces `broker`'s real one, or None (the real endpoint)."""
    raw = os.environ.get(ENDPOINTS_ENV)
    if not raw:
        return None
    try:
        table = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENDPOINTS_ENV} is not a JSON object: {exc}") from None
    value = table.get(broker) if isinstance(table, dict) else None
    return str(value).rstrip("/") if value else None


def websocket_url(base: str) -> str:
    """`http://host:port` -> `ws://host:port` (and https -> wss)."""
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base
