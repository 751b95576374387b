"""The execution use case (design rule 4: exactly one order per signal).

For an order intent:
1. A signal already final: nothing to do (a duplicate delivery).
2. Conditional put of the order record (status `new`) *before* any broker call.
3. If the record already existed, this is a redelivery: a `new` order may or may not have reached the
   broker, so ask the broker by client order id and submit only if it has never heard of it; an order
   past `new` is only synchronised from the broker, never submitted again.
4. A broker timeout is answered by a lookup, never by a blind resubmission; if the broker has no order
   yet the message is retried (and looked up again).
5. The broker's state is applied to the books (fills exactly once each), then the signal's outcome.

Broker updates (fills from the paper exchange or a broker stream) go through step 5 only.

A cancel request (from the API) asks the broker to cancel and goes through step 5 with its answer; an
order the broker never received is closed as cancelled in our ledger, and its intent, if redelivered,
then finds it final and submits nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeflow.accounts.halts import account_halt
from tradeflow.brokers.port import (
    Broker,
    BrokerAuthFailed,
    BrokerOrder,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    DuplicateClientOrderId,
    RejectCode,
)
from tradeflow.domain import Account, Order, OrderIntent, OrderStatus, SignalOutcome
from tradeflow.domain.orders import can_transition
from tradeflow.execution.books import Books, FillApplied
from tradeflow.storage.signals import SignalRepository

ACTOR = "execution"


class RetryLater(RuntimeError):
    """A transient condition: the message must be delivered again (after its visibility timeout)."""


class UnknownAccount(LookupError):
    pass


@dataclass
class ExecutionResult:
    client_order_id: str
    status: str  # submitted | duplicate | rejected | synced
    order: Order | None = None
    fills: list[FillApplied] | None = None
    detail: str | None = None


BrokerFactory = Callable[[Account, datetime], Broker]


class ExecutionService:
    def __init__(self, broker_for: BrokerFactory, books: Books | None = None) -> None:
        self.broker_for = broker_for
        self.books = books or Books()
        self.signals = SignalRepository()

    def _account(self, tenant_id: str, account_id: str) -> Account:
        account = self.books.accounts.get(tenant_id, account_id)
        if account is None:
            raise UnknownAccount(f"account {account_id} of tenant {tenant_id} does not exist")
        return account

    def execute(self, intent: OrderIntent) -> ExecutionResult:
        record = self.signals.get(intent.tenant_id, intent.signal_id)
        if record is not None and record.outcome.final:
            return ExecutionResult(intent.client_order_id, "duplicate", detail=f"signal already {record.outcome}")
        account = self._account(intent.tenant_id, intent.account_id)
        broker = self.broker_for(account, intent.decided_at)
        order = Order(
            tenant_id=intent.tenant_id,
            account_id=intent.account_id,
            client_order_id=intent.client_order_id,
            signal_id=intent.signal_id,
            deployment_id=intent.deployment_id,
            broker=broker.name,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            order_type=intent.order_type,
            time_in_force=intent.time_in_force,
            limit_price=intent.limit_price,
            stop_price=intent.stop_price,
            reserved_notional=intent.reserved_notional,
            reserved_open=intent.opens,
            created_at=intent.decided_at,
            updated_at=intent.decided_at,
        )
        status = "submitted"
        if not self.books.orders.create(order):
            stored = self.books.orders.get(order.tenant_id, order.client_order_id)
            assert stored is not None
            order, status = stored, "duplicate"
            if order.status.final:
                self._record_outcome(order)
                return ExecutionResult(order.client_order_id, status, order)
        broker_order: BrokerOrder | BrokerRejected
        if order.status is OrderStatus.NEW:
            # Ours to submit, unless an earlier attempt reached the broker before dying.
            existing = broker.get_order_by_client_id(order.client_order_id) if status == "duplicate" else None
            halt = account_halt(order.tenant_id, order.account_id) if existing is None else None
            if halt is not None:  # halted after risk approved the intent: nothing more goes out
                broker_order = BrokerRejected(RejectCode.REJECTED, f"account halted: {halt.reason}")
            else:
                broker_order = existing or self._submit(broker, order)
        else:
            known = broker.get_order_by_client_id(order.client_order_id)
            if known is None:
                raise RetryLater(
                    f"order {order.client_order_id} is {order.status} in our ledger but unknown to {broker.name}"
                )
            broker_order = known
        if isinstance(broker_order, BrokerRejected):
            closed = self.books.close_order(
                order, OrderStatus.REJECTED, intent.decided_at, ACTOR, f"broker: {broker_order}"
            )
            self._record_outcome(closed)
            return ExecutionResult(order.client_order_id, "rejected", closed, detail=str(broker_order))
        return self._sync(order, broker_order, status)

    def abandon(self, intent: OrderIntent, reason: str) -> None:
        """The last delivery of `intent` failed: its signal ends dead-lettered. An order that provably
        never reached the broker (still `new` in our ledger, unknown to the broker) is closed as
        rejected, which gives its reservation back; left behind, the phantom exposure would read as a
        position (a later SELL would be approved for shares the account does not hold). An order the
        broker has, or may have, stays open for the broker's updates to settle."""
        order = self.books.orders.get(intent.tenant_id, intent.client_order_id)
        if order is not None and order.status is OrderStatus.NEW:
            try:
                broker = self.broker_for(self._account(intent.tenant_id, intent.account_id), intent.decided_at)
                unknown = broker.get_order_by_client_id(order.client_order_id) is None
            except Exception:  # the broker cannot tell us: the order may exist, keep its reservation
                unknown = False
            if unknown:
                self.books.close_order(
                    order, OrderStatus.REJECTED, intent.decided_at, ACTOR, f"never reached the broker: {reason}"
                )
        self.signals.set_outcome(
            intent.tenant_id, intent.signal_id, SignalOutcome.DEAD_LETTERED, intent.decided_at, reason=reason
        )

    def apply_update(self, tenant_id: str, account_id: str, broker_order: BrokerOrder) -> ExecutionResult:
        order = self.books.orders.get(tenant_id, broker_order.client_order_id)
        if order is None or order.account_id != account_id:
            raise RetryLater(
                f"broker update for unknown order {broker_order.client_order_id}; the intent may still be in flight"
            )
        return self._sync(order, broker_order, "synced")

    def cancel(
        self, tenant_id: str, account_id: str, client_order_id: str, at: datetime, actor: str
    ) -> ExecutionResult:
        """Cancel an order at its broker and record what the broker reports (a fill that won the race
        is recorded as a fill; the order then ends filled, not cancelled)."""
        order = self.books.orders.get(tenant_id, client_order_id)
        if order is None or order.account_id != account_id:
            return ExecutionResult(client_order_id, "unknown", detail="no such order; nothing to cancel")
        if order.status.final:
            self._record_outcome(order)
            return ExecutionResult(client_order_id, "duplicate", order, detail=f"order already {order.status.value}")
        broker = self.broker_for(self._account(tenant_id, account_id), at)
        known = broker.get_order_by_client_id(client_order_id)
        if known is None:
            if order.status is not OrderStatus.NEW:
                raise RetryLater(
                    f"order {client_order_id} is {order.status} in our ledger but unknown to {broker.name}"
                )
            closed = self.books.close_order(order, OrderStatus.CANCELLED, at, actor, "cancelled before submission")
            self._record_outcome(closed)
            return ExecutionResult(client_order_id, "cancelled", closed)
        if not known.status.final:
            try:
                known = broker.cancel(client_order_id)
            except BrokerRejected as refused:
                return ExecutionResult(client_order_id, "refused", order, detail=str(refused))
            except (BrokerTimeout, BrokerUnavailable) as failure:
                raise RetryLater(f"{broker.name} could not cancel {client_order_id}: {failure}") from failure
        return self._sync(order, known, "cancelled")

    def _submit(self, broker: Broker, order: Order) -> BrokerOrder | BrokerRejected:
        try:
            return broker.submit(order)
        except BrokerRejected as rejected:
            return rejected
        except BrokerAuthFailed as refused:  # the guard has halted the account; this order ends here
            return BrokerRejected(
                RejectCode.CREDENTIALS, f"{broker.name} refused the account's credentials", refused.broker_message
            )
        except DuplicateClientOrderId:
            found = broker.get_order_by_client_id(order.client_order_id)
            if found is None:
                raise RetryLater(f"{broker.name} reports {order.client_order_id} as duplicate but not found") from None
            return found
        except BrokerTimeout as timeout:
            found = broker.get_order_by_client_id(order.client_order_id)
            if found is not None:
                return found
            raise RetryLater(
                f"{broker.name} timed out on {order.client_order_id} and does not know it yet; will look up again"
            ) from timeout
        except BrokerUnavailable as unavailable:
            raise RetryLater(f"{broker.name} unavailable: {unavailable}") from unavailable

    def _sync(self, order: Order, broker_order: BrokerOrder, status: str) -> ExecutionResult:
        applied = []
        if order.broker_order_id is None and order.status is OrderStatus.NEW and not broker_order.fills:
            order = self.books.close_order(
                order,
                OrderStatus.SUBMITTED,
                broker_order.updated_at,
                ACTOR,
                broker_order_id=broker_order.broker_order_id,
            )
        for broker_fill in broker_order.fills:
            result = self.books.apply_fill(order, broker_fill, ACTOR, broker_order.broker_order_id)
            if result is not None:
                applied.append(result)
                order = result.order
        current = self.books.orders.get(order.tenant_id, order.client_order_id)
        assert current is not None
        target = broker_order.status
        # A stale report (a late stream `accepted` after a snapshot recorded a partial fill) never moves
        # an order backwards.
        if (
            target != current.status
            and not current.status.final
            and target is not OrderStatus.PARTIALLY_FILLED
            and can_transition(current.status, target)
        ):
            reason = broker_order.reject_reason
            if target is OrderStatus.FILLED:
                if current.filled_quantity < _broker_filled(broker_order) or current.filled_quantity == 0:
                    raise RetryLater(f"{order.client_order_id}: broker reports filled but not every fill is known yet")
                # Every fill the broker made is recorded, yet the order is short of its quantity: the
                # broker accepted less than asked (an amount rounded down to the market's step). The
                # rest was never at the broker; closing the order releases its reservation.
                reason = f"filled {current.filled_quantity} of {current.quantity}: the broker accepted no more"
            current = self.books.close_order(
                current, target, broker_order.updated_at, ACTOR, reason, broker_order.broker_order_id
            )
        self._record_outcome(current)
        return ExecutionResult(order.client_order_id, status, current, applied)

    def _record_outcome(self, order: Order) -> None:
        if order.signal_id is None:
            return
        if not order.status.final:
            outcome, reason = SignalOutcome.ORDERED, f"order {order.status.value}"
        elif order.status is OrderStatus.FILLED:
            outcome, reason = SignalOutcome.FILLED, f"filled {order.filled_quantity} @ {order.average_fill_price}"
        elif order.filled_quantity > 0:
            outcome = SignalOutcome.FILLED
            reason = f"partially filled {order.filled_quantity}/{order.quantity}, then {order.status.value}"
        elif order.status is OrderStatus.REJECTED:
            outcome, reason = SignalOutcome.REJECTED, order.reject_reason or "rejected by broker"
        else:
            outcome, reason = SignalOutcome.CANCELLED, f"order {order.status.value}"
        self.signals.set_outcome(
            order.tenant_id,
            order.signal_id,
            outcome,
            order.updated_at,
            reason=reason,
            extra={"client_order_id": order.client_order_id},
        )


def _broker_filled(broker_order: BrokerOrder) -> Decimal:
    """What the broker says has filled: its running total, or the sum of its executions."""
    executions = sum((f.quantity for f in broker_order.fills if f.cumulative_quantity is None), Decimal(0))
    totals = [f.cumulative_quantity for f in broker_order.fills if f.cumulative_quantity is not None]
    return max([broker_order.filled_quantity, executions, *totals])
