"""Positions marked to market, and an account's portfolio: cash, equity, exposure, P&L, allocation.

The mark of a symbol is the close of its latest bar at or before "now" (the account's timeframe,
`1m` by default), else the position's last fill price, else its average price. Realized P&L is what
the positions have realized (average cost, before fees); fees are the ledger's fee entries; total
P&L is equity minus the account's starting cash (so it is net of fees).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from tradeflow.domain import Account, LedgerEntryKind, Position
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.positions import PositionRepository

ZERO = Decimal(0)
DEFAULT_TIMEFRAME = "1m"
MarkSource = Literal["bar", "last_fill", "average_price"]


@dataclass(frozen=True)
class MarkedPosition:
    position: Position
    mark: Decimal
    source: MarkSource

    @property
    def market_value(self) -> Decimal:
        return self.position.quantity * self.mark

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.mark - self.position.average_price) * self.position.quantity


@dataclass(frozen=True)
class AccountPortfolio:
    account: Account
    positions: list[MarkedPosition]
    fees: Decimal

    @property
    def market_value(self) -> Decimal:
        return sum((p.market_value for p in self.positions), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.account.cash + self.market_value

    @property
    def gross_exposure(self) -> Decimal:
        return sum((abs(p.market_value) for p in self.positions), ZERO)

    @property
    def net_exposure(self) -> Decimal:
        return self.market_value

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.position.realized_pnl for p in self.positions), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions), ZERO)

    @property
    def total_pnl(self) -> Decimal:
        return self.equity - self.account.starting_cash


def timeframe_of(account: Account) -> str:
    return str(account.broker_config.get("timeframe", DEFAULT_TIMEFRAME))


class Valuation:
    def __init__(self) -> None:
        self.bars = BarRepository()
        self.positions = PositionRepository()
        self.ledger = LedgerRepository()

    def mark(self, position: Position, timeframe: str, now: datetime) -> MarkedPosition:
        bars = self.bars.latest(position.tenant_id, position.symbol, timeframe, now, 1)
        if bars:
            return MarkedPosition(position, bars[-1].close, "bar")
        if position.last_price is not None:
            return MarkedPosition(position, position.last_price, "last_fill")
        return MarkedPosition(position, position.average_price, "average_price")

    def marked(self, account: Account, now: datetime, include_flat: bool = False) -> list[MarkedPosition]:
        held = self.positions.list(account.tenant_id, account.account_id)
        timeframe = timeframe_of(account)
        return [self.mark(p, timeframe, now) for p in held if include_flat or p.quantity != 0]

    def portfolio(self, account: Account, now: datetime) -> AccountPortfolio:
        positions = self.marked(account, now, include_flat=True)
        entries = self.ledger.list(account.tenant_id, account.account_id)
        fees = -sum((e.amount for e in entries if e.kind is LedgerEntryKind.FEE), ZERO)
        return AccountPortfolio(account, positions, fees)
