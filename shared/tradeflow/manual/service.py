"""The manual-order use cases behind `/v1/orders`: place, look up, cancel.

- `place` validates what only storage can tell (the account exists, a price is known), derives the
  order's ids, journals it as pending and queues it on `signals` — risk and execution do the rest,
  exactly as for a strategy signal (see `tradeflow.manual.model`).
- `cancel` of an order still waiting for risk cancels it in the journal (risk then finds it decided
  and creates no order); an order with the broker is cancelled through execution: a `CancelRequest` on
  the `orders` queue, in the order's FIFO group, so it is handled after the intent that created it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Order, SignalOutcome, SignalRecord
from tradeflow.domain.orders import OrderTerms
from tradeflow.domain.types import tidy
from tradeflow.execution.messages import CancelRequest
from tradeflow.manual.journal import ManualJournal
from tradeflow.manual.model import ManualOrder, journal_id, manual_ids
from tradeflow.messaging.sqs import MessageQueue
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

DEFAULT_TIMEFRAME = "1m"
RETRY_AFTER_SECONDS = 2


class ManualOrderError(Exception):
    pass


class InvalidOrder(ManualOrderError):
    """The request names something that does not exist or cannot be priced (a 422 on `field`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class OrderNotFound(ManualOrderError):
    pass


class OrderConflict(ManualOrderError):
    """The order's state forbids the change (a 409); `retry_after` when waiting would help."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PlaceRequest:
    account_id: str
    terms: OrderTerms
    client_tag: str | None = None


@dataclass(frozen=True)
class OrderState:
    """What is known of an order: its ledger record once execution has it, and — for a manual
    order — its journal entry (pending, approved, rejected ...)."""

    client_order_id: str
    order: Order | None
    journal: SignalRecord | None
    manual: ManualOrder | None


def last_price(tenant_id: str, symbol: str, timeframe: str, now: datetime) -> Decimal | None:
    bars = BarRepository().latest(tenant_id, symbol, timeframe, now, 1)
    return bars[-1].close if bars else None


class ManualOrderService:
    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self.journal = ManualJournal()
        self.signals = SignalRepository()
        self.accounts = AccountRepository()
        self.orders = OrderRepository()
        self.positions = PositionRepository()
        self.audit = AuditRepository()

    def place(
        self,
        tenant_id: str,
        actor: str,
        request: PlaceRequest,
        now: datetime,
        *,
        idempotency_key: str | None = None,
        request_hash: str = "",
    ) -> ManualOrder:
        account = self.accounts.get(tenant_id, request.account_id)
        if account is None:
            raise InvalidOrder("body.account_id", f"no account {request.account_id!r}")
        terms = request.terms
        timeframe = str(account.broker_config.get("timeframe", DEFAULT_TIMEFRAME))
        price = last_price(tenant_id, terms.symbol, timeframe, now)
        if price is None:
            position = self.positions.get(tenant_id, request.account_id, terms.symbol)
            price = position.last_price or terms.limit_price or terms.stop_price
        if price is None:
            raise InvalidOrder("body.symbol", f"no market price is known for {terms.symbol}; use a limit order")
        signal_id, coid = manual_ids(
            tenant_id, idempotency_key or uuid.uuid4().hex, from_idempotency_key=idempotency_key is not None
        )
        order = ManualOrder(
            **terms.model_dump(),
            signal_id=signal_id,
            client_order_id=coid,
            tenant_id=tenant_id,
            account_id=request.account_id,
            reference_price=tidy(price),
            requested_at=now,
            requested_by=actor,
            client_tag=request.client_tag,
        )
        if not self.journal.record_new(order, request_hash):
            found = self.journal.get(tenant_id, signal_id)
            if found is None or found[2].get("request_hash") != request_hash:
                raise OrderConflict("this Idempotency-Key was used for another order")
            record, order, _ = found
            if record.outcome is not SignalOutcome.PENDING:
                return order  # decided already: nothing to send again
        else:
            self.audit.record(
                self.audit.event(
                    tenant_id,
                    now,
                    actor,
                    "order.placed",
                    coid,
                    {
                        "account_id": order.account_id,
                        "symbol": order.symbol,
                        "side": order.side.value,
                        "quantity": str(order.quantity),
                        "order_type": order.order_type.value,
                    },
                )
            )
        # (re-)queue: deduplicated by the journal id for 5 minutes, and risk decides each order once
        self.queue.send("signals", order.model_dump_json(), order.group_id, order.signal_id)
        return order

    def state(self, tenant_id: str, client_order_id: str) -> OrderState:
        order = self.orders.get(tenant_id, client_order_id)
        journal = manual = None
        jid = journal_id(client_order_id)
        if jid is not None:
            found = self.journal.get(tenant_id, jid)
            if found is not None:
                journal, manual, _ = found
        elif order is not None and order.signal_id:
            journal = self.signals.get(tenant_id, order.signal_id)
        if order is None and manual is None:
            raise OrderNotFound(client_order_id)
        return OrderState(client_order_id, order, journal, manual)

    def cancel(self, tenant_id: str, client_order_id: str, actor: str, now: datetime) -> OrderState:
        current = self.state(tenant_id, client_order_id)
        order = current.order
        if order is None:
            assert current.manual is not None and current.journal is not None
            outcome = current.journal.outcome
            if outcome is SignalOutcome.PENDING and self.signals.set_outcome(
                tenant_id,
                current.manual.signal_id,
                SignalOutcome.CANCELLED,
                now,
                reason=f"cancelled by {actor} before the risk decision",
                expect=[SignalOutcome.PENDING],
            ):
                self._audit_cancel(tenant_id, client_order_id, actor, now, "cancelled before the risk decision")
                return self.state(tenant_id, client_order_id)
            current = self.state(tenant_id, client_order_id)  # decided meanwhile
            if current.order is None:
                assert current.journal is not None
                if current.journal.outcome.final:
                    raise OrderConflict(f"order {client_order_id} is already {current.journal.outcome.value}")
                raise OrderConflict(
                    f"order {client_order_id} is on its way to the broker; retry the cancel shortly",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            order = current.order
        if order.status.final:
            raise OrderConflict(f"order {client_order_id} is already {order.status.value}")
        request = CancelRequest(
            tenant_id=tenant_id,
            account_id=order.account_id,
            symbol=order.symbol,
            client_order_id=client_order_id,
            requested_at=now,
            requested_by=actor,
        )
        self.queue.send("orders", request.model_dump_json(), request.group_id, request.dedup_id)
        self._audit_cancel(tenant_id, client_order_id, actor, now, "sent to execution")
        return current

    def _audit_cancel(self, tenant_id: str, coid: str, actor: str, now: datetime, how: str) -> None:
        self.audit.record(self.audit.event(tenant_id, now, actor, "order.cancel_requested", coid, {"how": how}))
