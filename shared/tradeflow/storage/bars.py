"""Recent bars (the strategy function's input); history beyond the TTL lives in S3."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tradeflow.domain import Bar
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import DynamoTable, model_item
from tradeflow.storage.keys import bars_pk

RETENTION = timedelta(days=30)


class BarRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("bars")

    def _item(self, tenant_id: str, bar: Bar) -> dict[str, object]:
        expires = int((bar.ts + RETENTION).timestamp())
        return model_item(
            bar,
            pk=bars_pk(tenant_id, bar.symbol, bar.timeframe),
            sk=iso(bar.ts),
            tenant_id=tenant_id,
            expires_at=expires,
        )

    def put_many(self, tenant_id: str, bars: Sequence[Bar]) -> None:
        self.table.batch_put([self._item(tenant_id, b) for b in bars])

    def latest(self, tenant_id: str, symbol: str, timeframe: str, until: datetime, count: int) -> list[Bar]:
        """The `count` most recent bars opened at or before `until`, oldest first."""
        items = self.table.query(
            bars_pk(tenant_id, symbol, timeframe),
            sk_condition="#sk <= :until",
            values={":until": iso(until)},
            forward=False,
            limit=count,
        )
        return [Bar.model_validate(i) for i in reversed(items)]

    def after(self, tenant_id: str, symbol: str, timeframe: str, since: datetime, count: int) -> list[Bar]:
        """Bars opened strictly after `since`, oldest first."""
        items = self.table.query(
            bars_pk(tenant_id, symbol, timeframe),
            sk_condition="#sk > :since",
            values={":since": iso(since)},
            limit=count,
        )
        return [Bar.model_validate(i) for i in items]
