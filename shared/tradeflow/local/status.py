"""A one-line status of each account for the console: equity, cash, open positions, realized P&L.

Reads only the account items, their positions and the latest bar of each open symbol, so it stays
cheap however long the run (no scan of the journal or the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tradeflow.domain import Account
from tradeflow.domain.types import iso
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.positions import PositionRepository

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def account_lines(clock_now: datetime, timeframe: str = "1m") -> list[str]:
    bars = BarRepository()
    positions = PositionRepository()
    lines = []
    for item in DynamoTable("accounts").scan():
        account = Account.model_validate(item)
        held = [p for p in positions.list(account.tenant_id, account.account_id) if p.quantity]
        value = Decimal(0)
        for position in held:
            latest = bars.latest(account.tenant_id, position.symbol, timeframe, FAR_FUTURE, 1)
            value += position.quantity * (latest[-1].close if latest else position.average_price)
        realized = sum((p.realized_pnl for p in positions.list(account.tenant_id, account.account_id)), Decimal(0))
        lines.append(
            f"STATUS  {iso(clock_now)[:16]} {account.tenant_id}/{account.account_id}: "
            f"equity {account.cash + value:,.2f}  cash {account.cash:,.2f}  "
            f"{len(held)} open position(s)  realized P&L {realized:,.2f}"
        )
    return lines
