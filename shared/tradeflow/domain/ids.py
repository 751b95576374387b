"""Deterministic identifiers.

A signal's id is a hash of what makes it unique (tenant, deployment, symbol, bar time, action), so a
re-run of the same evaluation — a retried schedule, a replay — produces the same id, which the queues
deduplicate on and the ledger keys on. The client order id is derived from the signal id and fits the
48-character limit of brokers' client order ids.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from tradeflow.domain.types import iso

CLIENT_ORDER_ID_MAX = 48


def _digest(*parts: str, length: int = 26) -> str:
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.b32encode(raw).decode().rstrip("=").lower()[:length]


def signal_id(tenant_id: str, deployment_id: str, symbol: str, bar_time: datetime, action: str) -> str:
    return "sig_" + _digest(tenant_id, deployment_id, symbol, iso(bar_time), action)


def client_order_id(signal_id: str) -> str:
    """`tf-` + 32 base32 chars of the signal id's hash: unique per signal, ≤ 48 chars, [a-z0-9-]."""
    coid = "tf-" + _digest("order", signal_id, length=32)
    assert len(coid) <= CLIENT_ORDER_ID_MAX
    return coid


def fill_id(client_order_id: str, broker_fill_ref: str) -> str:
    """A fill's id from the order and the broker's own fill reference: the same fill seen twice
    (stream and poll, or a redelivery) gets the same id and is recorded once."""
    return "fil_" + _digest(client_order_id, broker_fill_ref)


def entry_id(*parts: str) -> str:
    return "led_" + _digest(*parts)


def event_id(*parts: str) -> str:
    return "evt_" + _digest(*parts)
