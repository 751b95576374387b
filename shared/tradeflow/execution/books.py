"""The books: applying a fill or a final order state atomically.

One DynamoDB transaction per fill writes the fill (conditional on its deterministic id: a fill seen
twice is recorded once), the position, the ledger entries, the account's cash and released
reservation, the order and an audit event. Every item read is written back conditionally on the
version it was read at, so a concurrent change makes the transaction fail and we re-read and retry
instead of losing an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeflow.brokers.port import BrokerFill
from tradeflow.domain import (
    Account,
    Fill,
    LedgerEntry,
    LedgerEntryKind,
    Order,
    OrderStatus,
)
from tradeflow.domain.accounts import PendingExposure
from tradeflow.domain.ids import entry_id, fill_id
from tradeflow.domain.types import tidy
from tradeflow.runtime.retry import backoff
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import TransactionConflict, Write, transact
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository

MAX_ATTEMPTS = 12
ZERO = Decimal(0)


class BooksContention(RuntimeError):
    """Could not commit after many conflicting concurrent updates (retried by the queue)."""


class MissingRecord(RuntimeError):
    """An order or account the books need does not exist."""


@dataclass(frozen=True)
class FillApplied:
    fill: Fill
    realized_pnl: Decimal
    position_quantity: Decimal
    cash: Decimal
    order: Order


def release(account: Account, symbol: str, quantity: Decimal, notional: Decimal, opens: int) -> Account:
    """The account with part of a reservation released (quantity signed like the order)."""
    current = account.pending.get(symbol, PendingExposure())
    left = PendingExposure(
        quantity=current.quantity - quantity,
        notional=max(current.notional - notional, ZERO),
        opens=max(current.opens - opens, 0),
    )
    pending = dict(account.pending)
    if left.quantity == 0 and left.notional == 0 and left.opens == 0:
        pending.pop(symbol, None)
    else:
        pending[symbol] = left
    return account.model_copy(update={"pending": pending})


def _share(order: Order, quantity: Decimal) -> Decimal:
    """The part of the order's reserved notional that `quantity` accounts for."""
    if order.quantity == 0:
        return ZERO
    return order.reserved_notional * quantity / order.quantity


def _increment(order: Order, broker_fill: BrokerFill) -> tuple[Decimal, Decimal, Decimal] | None:
    """(quantity, price, fee) to record for `broker_fill` against the order as recorded so far.

    An execution reported on its own is recorded as reported. A running total (`cumulative_quantity`)
    is recorded for the part beyond the order's recorded fills, at the price that makes the order's
    average equal the broker's (`cumulative_average`), with the fees beyond those recorded; None when
    the recorded fills already cover it (a stream event arriving after the REST snapshot that included
    it, or the other way round)."""
    cumulative = broker_fill.cumulative_quantity
    if cumulative is None:
        return broker_fill.quantity, broker_fill.price, broker_fill.fee
    known = order.filled_quantity
    if cumulative <= known:
        return None
    quantity = cumulative - known
    price = broker_fill.price
    average = broker_fill.cumulative_average
    if average is not None:
        paid_before = (order.average_fill_price or ZERO) * known
        derived = tidy((average * cumulative - paid_before) / quantity)
        # rounding in the broker's average can make a tiny increment's derived price absurd
        price = derived if derived > 0 else average
    fee = max(broker_fill.fee - order.fees, ZERO)
    return quantity, price, fee


class Books:
    def __init__(self) -> None:
        self.orders = OrderRepository()
        self.accounts = AccountRepository()
        self.positions = PositionRepository()
        self.fills = FillRepository()
        self.ledger = LedgerRepository()
        self.audit = AuditRepository()

    def apply_fill(
        self, order: Order, broker_fill: BrokerFill, actor: str, broker_order_id: str | None = None
    ) -> FillApplied | None:
        """Record one execution; None when it had been recorded before (or, for a running total, when
        the order's recorded fills already cover it)."""
        fill_key = fill_id(order.client_order_id, broker_fill.ref)
        for attempt in range(MAX_ATTEMPTS):
            if self.fills.exists_id(order.tenant_id, order.account_id, fill_key):
                return None
            current = self.orders.get(order.tenant_id, order.client_order_id)
            account = self.accounts.get(order.tenant_id, order.account_id)
            if current is None or account is None:
                raise MissingRecord(f"order {order.client_order_id} or account {order.account_id} is missing")
            increment = _increment(current, broker_fill)
            if increment is None:
                return None
            quantity, price, fee = increment
            fill = Fill(
                fill_id=fill_key,
                tenant_id=order.tenant_id,
                account_id=order.account_id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=quantity,
                price=price,
                fee=fee,
                ts=broker_fill.ts,
                broker_fill_ref=broker_fill.ref,
            )
            if broker_order_id and current.broker_order_id is None:
                current = current.model_copy(update={"broker_order_id": broker_order_id})
            writes, applied = self._fill_writes(current, account, fill, actor)
            try:
                transact(writes)
            except TransactionConflict as conflict:
                if conflict.reasons and conflict.reasons[0] == "ConditionalCheckFailed":
                    return None  # the fill itself exists: recorded by a concurrent delivery
                backoff(attempt)
                continue
            return applied
        raise BooksContention(f"fill {fill.fill_id} not committed after {MAX_ATTEMPTS} attempts")

    def _fill_writes(self, order: Order, account: Account, fill: Fill, actor: str) -> tuple[list[Write], FillApplied]:
        position = self.positions.get(order.tenant_id, order.account_id, order.symbol)
        new_position, realized = position.apply(fill)
        signed = fill.quantity * fill.side.sign
        trade_amount = -signed * fill.price
        cash_after_trade = account.cash + trade_amount
        cash_after_fee = cash_after_trade - fill.fee
        day = fill.ts.date().isoformat()
        day_pnl = account.realized_today(day) + realized - fill.fee

        filled = order.filled_quantity + fill.quantity
        paid = (order.average_fill_price or ZERO) * order.filled_quantity + fill.price * fill.quantity
        status = OrderStatus.FILLED if filled >= order.quantity else OrderStatus.PARTIALLY_FILLED
        new_order = order.transition(status).model_copy(
            update={
                "filled_quantity": filled,
                "average_fill_price": tidy(paid / filled),
                "fees": order.fees + fill.fee,
                "updated_at": fill.ts,
            }
        )
        # Release the reservation for what filled now; the rest too when the order is complete.
        released_qty = fill.quantity if status is not OrderStatus.FILLED else order.remaining
        new_account = release(
            account,
            order.symbol,
            released_qty * order.side.sign,
            _share(order, released_qty),
            1 if order.reserved_open and status is OrderStatus.FILLED else 0,
        ).model_copy(
            update={
                "cash": cash_after_fee,
                "trading_day": day,
                "day_realized_pnl": day_pnl,
                "updated_at": fill.ts,
            }
        )
        entries = [
            LedgerEntry(
                entry_id=entry_id(fill.fill_id, "trade"),
                tenant_id=fill.tenant_id,
                account_id=fill.account_id,
                ts=fill.ts,
                kind=LedgerEntryKind.TRADE,
                amount=trade_amount,
                balance_after=cash_after_trade,
                reference=fill.fill_id,
                symbol=fill.symbol,
                realized_pnl=realized,
            )
        ]
        if fill.fee:
            entries.append(
                LedgerEntry(
                    entry_id=entry_id(fill.fill_id, "fee"),
                    tenant_id=fill.tenant_id,
                    account_id=fill.account_id,
                    ts=fill.ts,
                    kind=LedgerEntryKind.FEE,
                    amount=-fill.fee,
                    balance_after=cash_after_fee,
                    reference=fill.fill_id,
                    symbol=fill.symbol,
                )
            )
        audit = self.audit.event(
            fill.tenant_id,
            fill.ts,
            actor,
            "fill.recorded",
            fill.fill_id,
            {
                "client_order_id": order.client_order_id,
                "symbol": fill.symbol,
                "side": fill.side.value,
                "quantity": str(fill.quantity),
                "price": str(fill.price),
                "fee": str(fill.fee),
                "realized_pnl": str(realized),
            },
        )
        writes = [
            self.fills.new_write(fill),  # first: its failure reason tells a duplicate apart
            self.positions.save_write(new_position),
            *(self.ledger.new_write(e) for e in entries),
            self.accounts.replace_write(new_account, account.risk_seq),
            self.orders.save_write(new_order),
            self.audit.new_write(audit),
        ]
        applied = FillApplied(fill, realized, new_position.quantity, cash_after_fee, new_order)
        return writes, applied

    def close_order(
        self,
        order: Order,
        status: OrderStatus,
        at: datetime,
        actor: str,
        reason: str | None = None,
        broker_order_id: str | None = None,
    ) -> Order:
        """Move an order without (further) fills to a state, releasing what it still reserves if the
        state is final. Returns the order as stored."""
        for attempt in range(MAX_ATTEMPTS):
            current = self.orders.get(order.tenant_id, order.client_order_id)
            if current is None:
                raise MissingRecord(f"order {order.client_order_id} is missing")
            if current.status == status or current.status.final:
                return current
            updated = current.transition(status).model_copy(
                update={
                    "updated_at": at,
                    "reject_reason": reason or current.reject_reason,
                    "broker_order_id": current.broker_order_id or broker_order_id,
                }
            )
            writes = [self.orders.save_write(updated)]
            if status.final:
                account = self.accounts.get(order.tenant_id, order.account_id)
                if account is None:
                    raise MissingRecord(f"account {order.account_id} is missing")
                released = release(
                    account,
                    current.symbol,
                    current.remaining * current.side.sign,
                    _share(current, current.remaining),
                    1 if current.reserved_open else 0,
                ).model_copy(update={"updated_at": at})
                writes.append(self.accounts.replace_write(released, account.risk_seq))
                writes.append(
                    self.audit.new_write(
                        self.audit.event(
                            order.tenant_id,
                            at,
                            actor,
                            f"order.{status.value}",
                            order.client_order_id,
                            {"reason": reason} if reason else {},
                        )
                    )
                )
            try:
                transact(writes)
            except TransactionConflict:
                backoff(attempt)
                continue
            return updated.model_copy(update={"version": updated.version + 1})
        raise BooksContention(f"order {order.client_order_id} not updated after {MAX_ATTEMPTS} attempts")
