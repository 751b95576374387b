"""The risk use case: a signal becomes exactly one approved intent or one recorded rejection.

Concurrency: the decision reads the account (with its `risk_seq`) first, then positions, and commits
the reservation with a transaction conditional on `risk_seq` — every fill and release bumps it too —
so two intents decided at the same time on different symbols of one account cannot jointly breach an
account-wide limit: the loser re-reads and decides again. The signal's transition PENDING -> APPROVED
is in the same transaction, so a duplicate delivery cannot reserve twice; if we die after the commit
but before sending, the redelivery re-sends the stored intent (deduplicated by client order id).

Manual orders placed through the API (`tradeflow.manual`) take the same path: `assess_manual` checks
them with `risk.manual.decide_manual` and reserves, approves and sends through the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Account, OrderIntent, OrderType, Signal, SignalOutcome, TimeInForce
from tradeflow.domain.accounts import PendingExposure
from tradeflow.domain.ids import client_order_id
from tradeflow.manual.journal import ManualJournal
from tradeflow.manual.model import ManualOrder
from tradeflow.messaging.sqs import MessageQueue
from tradeflow.risk.engine import Approved, Book, Rejected, decide
from tradeflow.risk.manual import decide_manual
from tradeflow.runtime.retry import backoff
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.controls import ControlRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import TransactionConflict, transact
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

ACTOR = "risk"
MAX_ATTEMPTS = 12


class RiskContention(RuntimeError):
    """Too many concurrent changes to the account; the message is retried."""


@dataclass
class RiskResult:
    signal_id: str
    status: str  # approved | rejected | duplicate | resent
    reason: str | None = None
    intent: OrderIntent | None = None


class RiskService:
    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self.deployments = DeploymentRepository()
        self.controls = ControlRepository()
        self.accounts = AccountRepository()
        self.positions = PositionRepository()
        self.signals = SignalRepository()
        self.audit = AuditRepository()

    def assess(self, signal: Signal, queued_seconds: float | None = None) -> RiskResult:
        """Decide on a signal. `queued_seconds` is how long it waited in the queue before its first
        delivery (from the message's own timestamps): a signal held up by an outage is rejected as
        stale rather than traded at a price from minutes ago."""
        now = signal.generated_at  # design rule 6: the time the signal was decided, not the wall clock
        record = self.signals.get(signal.tenant_id, signal.signal_id)
        if record is None:
            self.signals.record_new(signal)
            record = self.signals.get(signal.tenant_id, signal.signal_id)
            assert record is not None
        if record.outcome is SignalOutcome.APPROVED and record.intent is not None:
            intent = OrderIntent.model_validate(record.intent)
            self._send(intent)
            return RiskResult(signal.signal_id, "resent", intent=intent)
        if record.outcome is not SignalOutcome.PENDING:
            return RiskResult(signal.signal_id, "duplicate", reason=f"signal already {record.outcome.value}")

        deployment = self.deployments.get(signal.tenant_id, signal.deployment_id)
        if deployment is None:
            return self._reject(signal, now, f"unknown deployment {signal.deployment_id}")
        if deployment.account_id != signal.account_id:
            return self._reject(signal, now, f"deployment {deployment.deployment_id} trades another account")
        limit = deployment.risk.max_signal_age_seconds
        if queued_seconds is not None and limit is not None and queued_seconds > limit:
            return self._reject(signal, now, f"stale signal: waited {queued_seconds:.0f}s in the queue (max {limit}s)")

        for attempt in range(MAX_ATTEMPTS):
            account = self.accounts.get(signal.tenant_id, signal.account_id)  # read before positions
            if account is None:
                return self._reject(signal, now, f"unknown account {signal.account_id}")
            positions = {p.symbol: p for p in self.positions.list(signal.tenant_id, signal.account_id)}
            controls = self.controls.active_for(signal.tenant_id, signal.deployment_id, signal.account_id)
            book = Book(account, positions, {signal.symbol: signal.price})
            decision = decide(signal, deployment, controls, book, now)
            if isinstance(decision, Rejected):
                return self._reject(signal, now, decision.reason)
            result = self._approve(signal, account, decision, now)
            if result is not None:
                return result
            backoff(attempt)
        raise RiskContention(f"signal {signal.signal_id}: account {signal.account_id} kept changing")

    def assess_manual(self, order: ManualOrder) -> RiskResult:
        """Decide on a manual order (see `risk.manual`): approved as asked — the caller's quantity,
        type, prices and time in force — or rejected with the reason; like a signal, exactly once."""
        now = order.requested_at  # design rule 6: the time the order was placed
        record = self.signals.get(order.tenant_id, order.signal_id)
        if record is None:  # the API journals before queueing; a message without its entry is re-journaled
            ManualJournal().record_new(order)
            record = self.signals.get(order.tenant_id, order.signal_id)
            assert record is not None
        if record.outcome is SignalOutcome.APPROVED and record.intent is not None:
            intent = OrderIntent.model_validate(record.intent)
            self._send(intent)
            return RiskResult(order.signal_id, "resent", intent=intent)
        if record.outcome is not SignalOutcome.PENDING:
            return RiskResult(order.signal_id, "duplicate", reason=f"order already {record.outcome.value}")
        for attempt in range(MAX_ATTEMPTS):
            account = self.accounts.get(order.tenant_id, order.account_id)  # read before positions
            if account is None:
                return self._reject(order, now, f"unknown account {order.account_id}")
            positions = {p.symbol: p for p in self.positions.list(order.tenant_id, order.account_id)}
            controls = self.controls.active_for(order.tenant_id, None, order.account_id)
            book = Book(account, positions, {order.symbol: order.reference_price})
            decision = decide_manual(order, controls, book)
            if isinstance(decision, Rejected):
                return self._reject(order, now, decision.reason)
            intent = OrderIntent(
                tenant_id=order.tenant_id,
                account_id=order.account_id,
                client_order_id=order.client_order_id,
                signal_id=order.signal_id,
                symbol=order.symbol,
                side=order.side,
                quantity=order.quantity,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                reference_price=order.reference_price,
                reserved_notional=decision.notional,
                opens=decision.opens,
                decided_at=now,
            )
            result = self._reserve(intent, account, decision, now)
            if result is not None:
                return result
            backoff(attempt)
        raise RiskContention(f"manual order {order.client_order_id}: account {order.account_id} kept changing")

    def _approve(self, signal: Signal, account: Account, decision: Approved, now: datetime) -> RiskResult | None:
        intent = OrderIntent(
            tenant_id=signal.tenant_id,
            account_id=signal.account_id,
            client_order_id=client_order_id(signal.signal_id),
            signal_id=signal.signal_id,
            deployment_id=signal.deployment_id,
            symbol=signal.symbol,
            side=decision.side,
            quantity=decision.quantity,
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.DAY,
            reference_price=signal.price,
            reserved_notional=decision.notional,
            opens=decision.opens,
            decided_at=now,
        )
        return self._reserve(intent, account, decision, now)

    def _reserve(self, intent: OrderIntent, account: Account, decision: Approved, now: datetime) -> RiskResult | None:
        """Reserve the intent's exposure and approve its signal in one transaction, then send it; None
        when the account changed under us (decide again)."""
        pending = dict(account.pending)
        current = pending.get(intent.symbol, PendingExposure())
        pending[intent.symbol] = PendingExposure(
            quantity=current.quantity + decision.quantity * decision.side.sign,
            notional=current.notional + decision.notional,
            opens=current.opens + (1 if decision.opens else 0),
        )
        reserved = account.model_copy(update={"pending": pending, "updated_at": now})
        reason = "; ".join(decision.notes) or None
        audit = self.audit.event(
            intent.tenant_id,
            now,
            ACTOR,
            "signal.approved",
            intent.signal_id,
            {"client_order_id": intent.client_order_id, "side": intent.side.value, "quantity": str(intent.quantity)},
        )
        try:
            transact(
                [
                    self.accounts.replace_write(reserved, account.risk_seq),
                    self.signals.outcome_write(
                        intent.tenant_id,
                        intent.signal_id,
                        SignalOutcome.APPROVED,
                        now,
                        reason=reason,
                        expect=[SignalOutcome.PENDING],
                        extra={
                            "intent": json.loads(intent.model_dump_json()),
                            "client_order_id": intent.client_order_id,
                            "quantity": str(intent.quantity),
                        },
                    ),
                    self.audit.new_write(audit),
                ]
            )
        except TransactionConflict as conflict:
            if len(conflict.reasons) > 1 and conflict.reasons[1] == "ConditionalCheckFailed":
                return RiskResult(intent.signal_id, "duplicate", reason="decided by a concurrent delivery")
            return None  # the account changed under us: decide again
        self._send(intent)
        return RiskResult(intent.signal_id, "approved", reason=reason, intent=intent)

    def _reject(self, signal: Signal | ManualOrder, now: datetime, reason: str) -> RiskResult:
        if self.signals.set_outcome(
            signal.tenant_id,
            signal.signal_id,
            SignalOutcome.REJECTED,
            now,
            reason=reason,
            expect=[SignalOutcome.PENDING],
        ):
            self.audit.record(
                self.audit.event(signal.tenant_id, now, ACTOR, "signal.rejected", signal.signal_id, {"reason": reason})
            )
            return RiskResult(signal.signal_id, "rejected", reason=reason)
        return RiskResult(signal.signal_id, "duplicate", reason="decided by a concurrent delivery")

    def dead_letter(self, signal: Signal | ManualOrder, reason: str) -> None:
        """The last delivery failed: the signal ends dead-lettered. If it had been approved, its intent
        was never sent (sending is the last step of a successful attempt), so the reservation is given
        back in the same transaction; left behind, the phantom exposure would read as a position (a
        later SELL would be approved for shares the account does not hold)."""
        now = signal.generated_at
        for attempt in range(MAX_ATTEMPTS):
            record = self.signals.get(signal.tenant_id, signal.signal_id)
            if record is None or record.outcome.final:
                return
            if record.outcome is not SignalOutcome.APPROVED or record.intent is None:
                # (an ORDERED signal is past risk: execution owns its outcome)
                self.signals.set_outcome(
                    signal.tenant_id,
                    signal.signal_id,
                    SignalOutcome.DEAD_LETTERED,
                    now,
                    reason=reason,
                    expect=[SignalOutcome.PENDING],
                )
                return
            intent = OrderIntent.model_validate(record.intent)
            account = self.accounts.get(signal.tenant_id, signal.account_id)
            writes = [
                self.signals.outcome_write(
                    signal.tenant_id,
                    signal.signal_id,
                    SignalOutcome.DEAD_LETTERED,
                    now,
                    reason=reason,
                    expect=[SignalOutcome.APPROVED],
                )
            ]
            if account is not None:
                writes.append(self.accounts.replace_write(_unreserve(account, intent, now), account.risk_seq))
            try:
                transact(writes)
            except TransactionConflict:
                backoff(attempt)
                continue
            return
        raise RiskContention(f"signal {signal.signal_id}: could not record its dead-lettered outcome")

    def _send(self, intent: OrderIntent) -> None:
        self.queue.send("orders", intent.model_dump_json(), intent.group_id, intent.client_order_id)


def _unreserve(account: Account, intent: OrderIntent, now: datetime) -> Account:
    """The account with the reservation `_approve` made for `intent` taken back."""
    pending = dict(account.pending)
    current = pending.get(intent.symbol, PendingExposure())
    left = PendingExposure(
        quantity=current.quantity - intent.quantity * intent.side.sign,
        notional=max(current.notional - intent.reserved_notional, Decimal(0)),
        opens=max(current.opens - (1 if intent.opens else 0), 0),
    )
    if left.quantity == 0 and left.notional == 0 and left.opens == 0:
        pending.pop(intent.symbol, None)
    else:
        pending[intent.symbol] = left
    return account.model_copy(update={"pending": pending, "updated_at": now})
