"""The reconciliation use case: each account's books compared with its broker, repaired or halted.

For every account (all tenants, or the one the event names; paper accounts too, against the paper
broker, which is cheap and catches our own bugs), with the same broker adapters and guards as the
execution function:

1. Snapshot, in this order (see `compare.py` for why): the broker's positions; its open orders and
   the orders it updated since the last run; our ledger's orders; the broker's answer for every open
   ledger order its lists left out.
2. A broker account whose ledger is still empty gets the broker's cash as its opening deposit.
3. Order differences: the provably safe ones are repaired through the execution function's own ledger
   path (`ExecutionService.apply_update`: fills exactly once, orders the broker closed are closed); an
   order that never reached the broker is closed as rejected and its reservation released.
4. Positions (ledger read between two reads of the broker's) and cash are compared after the repairs.
5. Day orders past their session and orders past their maximum age are cancelled at the broker and
   closed through `ExecutionService.cancel` (see `expiry.py`).
6. Differences nothing explains halt the account (`halt_account`): risk then rejects its signals with
   the reason and the dashboard shows the alert. Cash differences are recorded and alerted, never
   halting. Every difference is an audit event (`reconcile.difference`), every run one more
   (`reconcile.run`).

A broker that cannot be reached skips its account for this run (audited, never a halt); refused
credentials have already halted the account through the broker guard. One account's failure never
stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from tradeflow.accounts.halts import CREDENTIALS_PREFIX, account_halt, halt_account
from tradeflow.brokers.factory import UnsupportedBroker, broker_for
from tradeflow.brokers.port import (
    Broker,
    BrokerAuthFailed,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    BrokerTimeout,
    BrokerUnavailable,
)
from tradeflow.domain import Account, OrderStatus, SignalOutcome
from tradeflow.domain.orders import InvalidOrderTransition
from tradeflow.execution.books import BooksContention, MissingRecord
from tradeflow.execution.service import BrokerFactory, ExecutionService, RetryLater
from tradeflow.reconcile.compare import compare_cash, compare_orders, compare_positions, newest, to_look_up
from tradeflow.reconcile.differences import Difference, DifferenceKind, Remedy
from tradeflow.reconcile.expiry import expiry
from tradeflow.reconcile.marks import ReconcileMarks
from tradeflow.reconcile.models import AccountReport, RunStatus
from tradeflow.reconcile.opening import OpeningBalances
from tradeflow.reconcile.policy import GRACE, ReconcilePolicy
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.signals import SignalRepository

ACTOR = "reconcile"
HALT_REASON_MAX = 480
OPEN_OUTCOMES = (SignalOutcome.PENDING, SignalOutcome.APPROVED, SignalOutcome.ORDERED)

log = logging.getLogger("tradeflow.reconcile")


def reconcile_broker(account: Account, now: datetime) -> Broker:
    """The account's broker as the execution function gets it, with credential reads audited as ours."""
    return broker_for(account, now, actor=ACTOR)


@dataclass
class _Finding:
    difference: Difference
    action: str
    repaired: bool = False


@dataclass
class _Run:
    account: Account
    now: datetime
    since: datetime
    findings: list[_Finding] = field(default_factory=list)
    opening_balance: Decimal | None = None
    cash_difference: Decimal | None = None

    def add(self, difference: Difference, action: str, repaired: bool = False) -> None:
        self.findings.append(_Finding(difference, action, repaired))

    @property
    def unexplained(self) -> list[Difference]:
        return [f.difference for f in self.findings if f.difference.halts]

    def report(self, status: RunStatus, reason: str | None = None) -> AccountReport:
        kinds: dict[str, int] = {}
        for finding in self.findings:
            kinds[finding.difference.kind.value] = kinds.get(finding.difference.kind.value, 0) + 1
        return AccountReport(
            tenant_id=self.account.tenant_id,
            account_id=self.account.account_id,
            broker=self.account.broker,
            status=status,
            at=self.now,
            since=self.since,
            differences=len(self.findings),
            repaired=sum(1 for f in self.findings if f.repaired and f.difference.remedy is not Remedy.CANCEL),
            unexplained=len(self.unexplained),
            cancelled=sum(1 for f in self.findings if f.repaired and f.difference.remedy is Remedy.CANCEL),
            kinds=kinds,
            cash_difference=self.cash_difference,
            opening_balance=self.opening_balance,
            reason=reason,
        )


class Reconciler:
    def __init__(self, broker_for: BrokerFactory = reconcile_broker, *, grace: timedelta = GRACE) -> None:
        self.broker_for = broker_for
        self.grace = grace
        self.execution = ExecutionService(broker_for)
        self.books = self.execution.books
        self.signals = SignalRepository()
        self.audit = AuditRepository()
        self.marks = ReconcileMarks()
        self.openings = OpeningBalances()

    # -- the run ---------------------------------------------------------------------------------

    def accounts(self, tenant_id: str | None = None, account_id: str | None = None) -> list[Account]:
        if tenant_id is not None and account_id is not None:
            found = self.books.accounts.get(tenant_id, account_id)
            return [found] if found is not None else []
        if tenant_id is not None:
            listed: Iterable[Account] = self.books.accounts.list(tenant_id)
        else:
            listed = (Account.model_validate(item) for item in DynamoTable("accounts").scan())
        chosen = [a for a in listed if account_id is None or a.account_id == account_id]
        return sorted(chosen, key=lambda a: (a.tenant_id, a.account_id))

    def run(self, now: datetime, tenant_id: str | None = None, account_id: str | None = None) -> list[AccountReport]:
        reports = []
        for account in self.accounts(tenant_id, account_id):
            try:
                report = self.reconcile(account, now)
            except Exception as error:  # one account's failure never stops the others
                log.exception("reconciliation of %s/%s failed", account.tenant_id, account.account_id)
                report = _Run(account, now, now).report(RunStatus.ERROR, f"{type(error).__name__}: {error}"[:500])
                try:
                    self._audit_run(report)
                except Exception:
                    log.exception("could not audit the failed reconciliation of %s", account.account_id)
            reports.append(report)
        return reports

    def reconcile(self, account: Account, now: datetime) -> AccountReport:
        tenant_id, account_id = account.tenant_id, account.account_id
        since = self.marks.since(tenant_id, account_id, now)
        run = _Run(account, now, since)
        halt = account_halt(tenant_id, account_id)
        if halt is not None and halt.reason.startswith(CREDENTIALS_PREFIX):
            return self._finish(run, RunStatus.SKIPPED, f"waiting for rotated credentials: {halt.reason}")
        try:
            broker = self.broker_for(account, now)
            self._compare(run, broker, ReconcilePolicy.from_config(account.broker_config))
        except BrokerAuthFailed as refused:
            reason = f"the broker refused the credentials (the account is halted): {refused.broker_message}"
            return self._finish(run, RunStatus.SKIPPED, reason)
        except (BrokerTimeout, BrokerUnavailable) as failed:
            return self._finish(run, RunStatus.SKIPPED, f"broker unreachable: {type(failed).__name__}: {failed}")
        except UnsupportedBroker as unsupported:
            return self._finish(run, RunStatus.SKIPPED, str(unsupported))
        unexplained = run.unexplained
        if not unexplained:
            report = self._finish(run, RunStatus.OK)
        else:
            reason = halt_reason(broker.name, unexplained)
            halt_account(tenant_id, account_id, reason, actor=ACTOR, at=now)
            report = self._finish(run, RunStatus.HALTED, reason)
        self.marks.mark(tenant_id, account_id, now)
        return report

    # -- the comparison --------------------------------------------------------------------------

    def _compare(self, run: _Run, broker: Broker, policy: ReconcilePolicy) -> None:
        account, now = run.account, run.now
        tenant_id, account_id = account.tenant_id, account.account_id
        positions_before = quantities(broker.positions())
        listed = newest([*broker.open_orders(), *broker.recent_orders(run.since)])
        # The ledger is read after the broker's orders: an order reaches the broker only once it is in
        # the ledger, so every order of ours in the broker's lists is in what we read now.
        ledger_orders = self.books.orders.list_for_account(tenant_id, account_id)
        found: dict[str, BrokerOrder] = dict(listed)
        for client_order_id in to_look_up(ledger_orders, listed, now, self.grace):
            answer = broker.get_order_by_client_id(client_order_id)
            if answer is not None:
                found[client_order_id] = answer
        if account.broker != "paper" and self.openings.ledger_is_empty(tenant_id, account_id):
            self._opening_balance(run, broker)
        for difference in compare_orders(ledger_orders, found, now=now, since=run.since, grace=self.grace):
            action, repaired = self._repair(run, difference, broker.name)
            run.add(difference, action, repaired)
        ledger_positions = {p.symbol: p.quantity for p in self.books.positions.list(tenant_id, account_id)}
        positions_after = quantities(broker.positions())
        for difference in compare_positions(
            ledger_positions, positions_before, positions_after, policy.position_tolerance
        ):
            run.add(difference, "halt" if difference.halts else "recorded")
        ledger_account = self.books.accounts.get(tenant_id, account_id)
        if ledger_account is not None:
            cash = compare_cash(ledger_account.cash, broker.account().cash, policy.cash_tolerance)
            if cash is not None:
                run.cash_difference = Decimal(cash.broker or 0) - Decimal(cash.ledger or 0)
                log.error("cash of %s/%s differs from the broker's: %s", tenant_id, account_id, cash.describe())
                run.add(cash, "recorded and alerted")
        still_open = sorted(c for c, o in found.items() if not o.status.final)
        self._expire(run, still_open, policy)

    def _opening_balance(self, run: _Run, broker: Broker) -> None:
        account = run.account
        cash = broker.account().cash
        opened = self.openings.record(account.tenant_id, account.account_id, cash, run.now, ACTOR)
        if opened is None:
            return
        run.opening_balance = cash
        run.add(
            Difference(
                kind=DifferenceKind.OPENING_BALANCE,
                ledger="no entries",
                broker=str(cash),
                detail="a new broker account: its cash at the broker is its opening balance",
            ),
            "recorded as the opening deposit",
            repaired=True,
        )

    def _repair(self, run: _Run, difference: Difference, broker_name: str) -> tuple[str, bool]:
        tenant_id, account_id = run.account.tenant_id, run.account.account_id
        if difference.remedy is Remedy.SYNC:
            assert difference.broker_order is not None
            try:
                result = self.execution.apply_update(tenant_id, account_id, difference.broker_order)
            except (RetryLater, BooksContention, MissingRecord, InvalidOrderTransition) as failed:
                log.warning("could not repair %s: %s", difference.describe(), failed)
                return f"repair failed, tried again next run: {failed}", False
            status = result.order.status.value if result.order is not None else "unknown"
            return f"synced from the broker: {len(result.fills or [])} fill(s) recorded, order {status}", True
        if difference.remedy is Remedy.CLOSE_UNSUBMITTED:
            return self._close_unsubmitted(run, difference, broker_name)
        return ("halt" if difference.halts else "recorded"), False

    def _close_unsubmitted(self, run: _Run, difference: Difference, broker_name: str) -> tuple[str, bool]:
        """Close an order that never reached the broker like `ExecutionService.abandon` does."""
        tenant_id = run.account.tenant_id
        assert difference.client_order_id is not None
        current = self.books.orders.get(tenant_id, difference.client_order_id)
        if current is None or current.status is not OrderStatus.NEW:
            return "left alone: the order moved on meanwhile", False
        reason = f"never reached the broker: unknown to {broker_name} {self.grace} after it was recorded"
        closed = self.books.close_order(current, OrderStatus.REJECTED, run.now, ACTOR, reason)
        if closed.signal_id is not None:
            self.signals.set_outcome(
                tenant_id,
                closed.signal_id,
                SignalOutcome.REJECTED,
                run.now,
                reason=reason,
                expect=OPEN_OUTCOMES,
                extra={"client_order_id": closed.client_order_id},
            )
        return "closed as rejected; its reservation released", True

    def _expire(self, run: _Run, open_at_broker: list[str], policy: ReconcilePolicy) -> None:
        account = run.account
        for client_order_id in open_at_broker:
            order = self.books.orders.get(account.tenant_id, client_order_id)
            if order is None or order.account_id != account.account_id:
                continue
            if order.status.final or order.status is OrderStatus.NEW:
                continue
            difference = expiry(order, run.now, account.broker, policy)
            if difference is None:
                continue
            try:
                result = self.execution.cancel(account.tenant_id, account.account_id, client_order_id, run.now, ACTOR)
            except (RetryLater, BrokerError, BooksContention, InvalidOrderTransition) as failed:
                # The comparison is complete by now: a cancel that fails (the broker gone meanwhile
                # included) is recorded and tried again next run, and never costs the run its verdict.
                run.add(difference, f"cancel failed, tried again next run: {failed}")
                continue
            final = result.order is not None and result.order.status.final
            status = result.order.status.value if result.order is not None else result.status
            action = f"cancelled at the broker ({difference.detail}): order {status}"
            if not final:
                action = f"cancel {result.status}: {result.detail or status}"
            run.add(difference, action, repaired=final)

    # -- the record ------------------------------------------------------------------------------

    def _finish(self, run: _Run, status: RunStatus, reason: str | None = None) -> AccountReport:
        report = run.report(status, reason)
        account_id = run.account.account_id
        for finding in run.findings:
            difference = finding.difference
            self.audit.record(
                self.audit.event(
                    run.account.tenant_id,
                    run.now,
                    ACTOR,
                    "reconcile.difference",
                    f"{account_id}/{difference.kind.value}/{difference.subject}",
                    difference.audit_details(account_id, finding.action),
                )
            )
        self._audit_run(report)
        if status is RunStatus.SKIPPED:
            log.warning("reconciliation of %s/%s skipped: %s", run.account.tenant_id, account_id, reason)
        return report

    def _audit_run(self, report: AccountReport) -> None:
        details = report.summary()
        for key in ("tenant_id", "account_id", "at"):
            details.pop(key, None)
        self.audit.record(
            self.audit.event(report.tenant_id, report.at, ACTOR, "reconcile.run", report.account_id, details)
        )


def quantities(positions: Iterable[BrokerPosition]) -> dict[str, Decimal]:
    """Signed quantity per symbol (flat symbols left out)."""
    found: dict[str, Decimal] = {}
    for position in positions:
        found[position.symbol] = found.get(position.symbol, Decimal(0)) + position.quantity
    return {symbol: quantity for symbol, quantity in found.items() if quantity != 0}


def halt_reason(broker_name: str, unexplained: list[Difference]) -> str:
    """The halt's reason, naming what differs (shown to the trader and in the alert), at most
    `HALT_REASON_MAX` characters: as many differences as fit, then how many more there are."""
    head = f"reconciliation: the books differ from {broker_name} in a way that cannot be explained: "
    parts: list[str] = []
    for index, difference in enumerate(unexplained):
        text = difference.describe()
        if not parts:
            text = text[: HALT_REASON_MAX - len(head) - len("; and 999 more")]
        elif len(head) + len("; ".join([*parts, text])) > HALT_REASON_MAX - len("; and 999 more"):
            parts.append(f"and {len(unexplained) - index} more")
            break
        parts.append(text)
    return head + "; ".join(parts)
