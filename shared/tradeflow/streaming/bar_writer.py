"""Writing closed bars to the bars table, for the tenant whose account streamed them.

Bars are keyed per tenant (`tenant#symbol#timeframe`), and the streamer aggregates per tenant and broker
(the key `<tenant>/<broker>`): market data received with one tenant's credentials is that tenant's (a
broker's data licence is per user, design rule 5), and one exchange's prices never overwrite another's
within a tenant's aggregation. Writing a bar twice is harmless: same key, same values.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeflow.domain import Bar
from tradeflow.storage.bars import BarRepository
from tradeflow.streaming.bars import ClosedBar

_SEPARATOR = "/"  # tenant ids never contain it; broker names ("alpaca", "ccxt:kraken") neither


def bar_key(tenant_id: str, broker: str) -> str:
    return f"{tenant_id}{_SEPARATOR}{broker}"


def split_bar_key(key: str) -> tuple[str, str]:
    tenant_id, broker = key.split(_SEPARATOR, 1)
    return tenant_id, broker


class BarWriter:
    def __init__(self) -> None:
        self.repository = BarRepository()

    def write(self, closed: Sequence[ClosedBar]) -> int:
        """Write the bars (blocking); returns how many were written."""
        by_tenant: dict[str, list[Bar]] = {}
        for item in closed:
            by_tenant.setdefault(split_bar_key(item.key)[0], []).append(item.bar)
        for tenant_id, bars in by_tenant.items():
            self.repository.put_many(tenant_id, bars)
        return sum(len(bars) for bars in by_tenant.values())
