"""Positions with average-cost accounting and realized P&L."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeflow.domain.base import Model
from tradeflow.domain.fills import Fill
from tradeflow.domain.types import Price, Quantity, ResourceId, Symbol, TenantId, UtcDatetime, tidy


class Position(Model):
    """Signed quantity (negative = short) at an average cost; realized P&L accumulates on closes."""

    tenant_id: TenantId
    account_id: ResourceId
    symbol: Symbol
    quantity: Quantity = Decimal(0)
    average_price: Price = Decimal(0)
    realized_pnl: Price = Decimal(0)
    last_price: Price | None = None
    last_loss_at: UtcDatetime | None = None
    opened_at: UtcDatetime | None = None  # the fill that opened the current position (None when flat)
    updated_at: UtcDatetime | None = None
    version: int = 0

    @property
    def market_value(self) -> Decimal:
        mark = self.last_price if self.last_price is not None else self.average_price
        return self.quantity * mark

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.last_price is None or self.quantity == 0:
            return Decimal(0)
        return (self.last_price - self.average_price) * self.quantity

    def apply(self, fill: Fill) -> tuple[Position, Decimal]:
        """The position after `fill`, and the P&L the fill realised (before fees).

        Average cost: adding to a position re-weights the average; reducing realises
        (price - average) x closed quantity; crossing through zero opens the remainder at the fill price.
        """
        signed = fill.quantity * fill.side.sign
        qty, avg = self.quantity, self.average_price
        realized = Decimal(0)
        if qty == 0 or (qty > 0) == (signed > 0):
            new_qty = qty + signed
            new_avg = (abs(qty) * avg + abs(signed) * fill.price) / abs(new_qty)
        else:
            closed = min(abs(qty), abs(signed))
            direction = 1 if qty > 0 else -1
            realized = (fill.price - avg) * closed * direction
            new_qty = qty + signed
            new_avg = avg if new_qty != 0 and (new_qty > 0) == (qty > 0) else fill.price
            if new_qty == 0:
                new_avg = Decimal(0)
        # a position opens when it leaves zero or crosses through it; adding to it keeps its opening time
        if new_qty == 0:
            opened: datetime | None = None
        elif qty == 0 or (qty > 0) != (new_qty > 0):
            opened = fill.ts
        else:
            opened = self.opened_at
        last_loss: datetime | None = self.last_loss_at
        if realized - fill.fee < 0 and realized != 0:
            last_loss = fill.ts
        updated = self.model_copy(
            update={
                "quantity": new_qty,
                "average_price": tidy(new_avg),
                "realized_pnl": self.realized_pnl + realized,
                "last_price": fill.price,
                "last_loss_at": last_loss,
                "opened_at": opened,
                "updated_at": fill.ts,
            }
        )
        return updated, realized
