"""Account lifecycle: open (paper or broker), describe, reset (paper), rotate credentials, delete.

Rules:
- An account id is unique per tenant and never reused: an id with recorded history (ledger entries or
  orders) is refused even after its account was deleted, so histories never merge.
- An account is *in use* while a deployment that is not stopped (active or paused — a paused one can be
  resumed at any time) names it. Reset and delete are refused while it is in use, and delete also
  while it has open orders.
- Reset (paper only) cancels the open orders (our ledger releases their reservations), clears the
  simulated broker's order book, flattens every position, and restores the starting cash with a
  `reset` ledger entry for the difference (so cash still equals the sum of the ledger), plus an audit
  event. It does not sell at market: a reset is a fresh start, not a trade.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradeflow.accounts.credentials import (
    AlpacaCredentials,
    BrokerCredentials,
    CcxtCredentials,
    CredentialVault,
    broker_kind,
    key_hint,
)
from tradeflow.accounts.halts import CREDENTIALS_PREFIX, account_halt, release_account
from tradeflow.domain import Account, AuditEvent, DeploymentStatus, LedgerEntry, LedgerEntryKind, OrderStatus
from tradeflow.domain.ids import entry_id, event_id
from tradeflow.domain.types import iso
from tradeflow.execution.accounts import open_account
from tradeflow.execution.books import Books
from tradeflow.runtime.retry import backoff
from tradeflow.secrets import SecretStore, SecretStoreError, secret_name
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import DynamoTable, TransactionConflict, Write, transact
from tradeflow.storage.keys import tenant_account
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository

MAX_ATTEMPTS = 8
TRANSACTION_LIMIT = 100


class AccountNotFound(LookupError):
    pass


class AccountConflict(Exception):
    """The request conflicts with the account's state (exists, in use, not paper...)."""


class CredentialsMismatch(ValueError):
    """Credentials of another kind (or exchange) than the account's; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CredentialsUnavailable(RuntimeError):
    """Secrets Manager failed; nothing was changed."""


@dataclass(frozen=True)
class PaperOptions:
    fill_model: str = "next_open"
    slippage_bps: Decimal = Decimal(0)
    fee_rate: Decimal = Decimal(0)
    timeframe: str = "1m"
    allow_margin: bool = False

    def config(self) -> dict[str, Any]:
        return {
            "fill_model": self.fill_model,
            "slippage_bps": str(self.slippage_bps),
            "fee_rate": str(self.fee_rate),
            "timeframe": self.timeframe,
            "allow_margin": self.allow_margin,
        }


@dataclass(frozen=True)
class AccountSummary:
    account: Account
    equity: Decimal
    reserved: Decimal
    in_use_by: tuple[str, ...]  # deployments (not stopped) that trade the account
    halted: str | None = None  # why the system halted the account's trading, while it is halted

    @property
    def kind(self) -> str:
        return broker_kind(self.account.broker)

    @property
    def status(self) -> str:
        return "in_use" if self.in_use_by else "idle"


def new_account_id() -> str:
    return "acc_" + uuid.uuid4().hex[:20]


class AccountService:
    def __init__(self, store: SecretStore | None = None) -> None:
        self.accounts = AccountRepository()
        self.vault = CredentialVault(store) if store is not None else None
        self.audit = AuditRepository()
        self.positions = PositionRepository()

    def _vault(self) -> CredentialVault:
        if self.vault is None:
            self.vault = CredentialVault()
        return self.vault

    # -- reading ---------------------------------------------------------------------------------

    def get(self, tenant_id: str, account_id: str) -> Account:
        account = self.accounts.get(tenant_id, account_id)
        if account is None:
            raise AccountNotFound(account_id)
        return account

    def summary(self, account: Account, deployments: dict[str, tuple[str, ...]] | None = None) -> AccountSummary:
        if deployments is None:
            deployments = self.deployments_by_account(account.tenant_id)
        equity = account.cash + sum(
            (p.market_value for p in self.positions.list(account.tenant_id, account.account_id)), Decimal(0)
        )
        reserved = sum((p.notional for p in account.pending.values()), Decimal(0))
        halt = account_halt(account.tenant_id, account.account_id)
        return AccountSummary(
            account, equity, reserved, deployments.get(account.account_id, ()), halt.reason if halt else None
        )

    def deployments_by_account(self, tenant_id: str) -> dict[str, tuple[str, ...]]:
        """Deployments that are not stopped, by the account they trade."""
        using: dict[str, list[str]] = {}
        for deployment in DeploymentRepository().list(tenant_id):
            if deployment.status is not DeploymentStatus.STOPPED:
                using.setdefault(deployment.account_id, []).append(deployment.deployment_id)
        return {account: tuple(sorted(ids)) for account, ids in using.items()}

    # -- opening ---------------------------------------------------------------------------------

    def _check_new(self, tenant_id: str, account_id: str) -> None:
        if self.accounts.get(tenant_id, account_id) is not None:
            raise AccountConflict(f"account {account_id!r} already exists")
        history = LedgerRepository().table.query(tenant_account(tenant_id, account_id), limit=1)
        orders = OrderRepository().table.query(tenant_account(tenant_id, account_id), index="by_account", limit=1)
        if history or orders:
            raise AccountConflict(f"account id {account_id!r} has recorded history; choose another id")

    def open_paper(
        self,
        tenant_id: str,
        account_id: str,
        *,
        name: str,
        starting_cash: Decimal,
        currency: str,
        options: PaperOptions,
        actor: str,
        at: datetime,
    ) -> Account:
        self._check_new(tenant_id, account_id)
        opened = open_account(
            tenant_id,
            account_id,
            starting_cash,
            at,
            name=name,
            broker="paper",
            mode="paper",
            broker_config=options.config(),
            currency=currency,
        )
        if not opened:
            raise AccountConflict(f"account {account_id!r} already exists")
        self._record(
            tenant_id, at, actor, "account.created", account_id, {"broker": "paper", "cash": str(starting_cash)}
        )
        return self.get(tenant_id, account_id)

    def open_broker(
        self,
        tenant_id: str,
        account_id: str,
        *,
        name: str,
        currency: str,
        credentials: BrokerCredentials,
        actor: str,
        at: datetime,
    ) -> Account:
        """The account record first (its conditional put settles a race for the id), then the secret;
        if the secret cannot be stored the record is removed again and nothing remains."""
        self._check_new(tenant_id, account_id)
        if isinstance(credentials, AlpacaCredentials):
            broker, live = "alpaca", not credentials.paper
            config: dict[str, Any] = {"paper": credentials.paper}
        else:
            broker, live = f"ccxt:{credentials.exchange}", not credentials.sandbox
            config = {"exchange": credentials.exchange, "sandbox": credentials.sandbox}
        vault = self._vault()
        config.update(credentials_secret=secret_name(tenant_id, account_id), key_hint=key_hint(credentials.key_id))
        account = Account(
            tenant_id=tenant_id,
            account_id=account_id,
            name=name or account_id,
            broker=broker,
            mode="live" if live else "paper",
            currency=currency,
            broker_config=config,
            created_at=at,
            updated_at=at,
        )
        if not self.accounts.create(account):
            raise AccountConflict(f"account {account_id!r} already exists")
        try:
            vault.store_credentials(tenant_id, account_id, credentials, actor)
        except SecretStoreError as exc:
            self.accounts.table.delete({"pk": tenant_id, "sk": account_id})
            raise CredentialsUnavailable(str(exc)) from None
        self._record(tenant_id, at, actor, "account.created", account_id, {"broker": broker, "mode": account.mode})
        return account

    # -- credentials -----------------------------------------------------------------------------

    def rotate(
        self, tenant_id: str, account_id: str, credentials: BrokerCredentials, *, actor: str, at: datetime
    ) -> Account:
        account = self.get(tenant_id, account_id)
        kind = broker_kind(account.broker)
        if kind not in ("alpaca", "ccxt"):
            raise AccountConflict(f"account {account_id!r} is a {kind} account: it has no credentials")
        if credentials.kind != kind:
            raise CredentialsMismatch("kind", f"this is a {kind} account: send {kind} credentials")
        if isinstance(credentials, AlpacaCredentials):
            credentials = credentials.model_copy(update={"paper": bool(account.broker_config.get("paper", True))})
        elif isinstance(credentials, CcxtCredentials):
            if credentials.exchange != account.broker_config.get("exchange"):
                raise CredentialsMismatch("exchange", f"this account trades on {account.broker_config.get('exchange')}")
            credentials = credentials.model_copy(update={"sandbox": bool(account.broker_config.get("sandbox", True))})
        try:
            self._vault().store_credentials(tenant_id, account_id, credentials, actor, rotated=True)
        except SecretStoreError as exc:
            raise CredentialsUnavailable(str(exc)) from None
        # credentials_rotated_at: warm adapters built from the old secret are rebuilt (see brokers.factory)
        config = {**account.broker_config, "key_hint": key_hint(credentials.key_id), "credentials_rotated_at": iso(at)}
        self.accounts.table.update(
            {"pk": tenant_id, "sk": account_id},
            "SET broker_config = :c, updated_at = :u",
            condition="attribute_exists(pk)",
            values={":c": config, ":u": iso(at)},
        )
        # new credentials lift a halt the broker's refusal of the old ones caused (not other halts)
        release_account(tenant_id, account_id, "credentials rotated", actor, at, only_prefix=CREDENTIALS_PREFIX)
        return self.get(tenant_id, account_id)

    # -- reset and delete ------------------------------------------------------------------------

    def _not_in_use(self, tenant_id: str, account_id: str, doing: str) -> None:
        users = self.deployments_by_account(tenant_id).get(account_id, ())
        if users:
            raise AccountConflict(
                f"cannot {doing} account {account_id!r}: deployments {', '.join(users)} use it; stop them first"
            )

    def reset(self, tenant_id: str, account_id: str, *, actor: str, at: datetime) -> Account:
        account = self.get(tenant_id, account_id)
        if account.broker != "paper":
            raise AccountConflict(f"only paper accounts can be reset; {account_id!r} is a {account.broker} account")
        self._not_in_use(tenant_id, account_id, "reset")
        books = Books()
        cancelled = 0
        for order in OrderRepository().list_for_account(tenant_id, account_id):
            if not order.status.final:
                books.close_order(order, OrderStatus.CANCELLED, at, actor, reason="account reset")
                cancelled += 1
        self._clear_paper_book(tenant_id, account_id)
        flattened = self._flatten(tenant_id, account_id, at)
        return self._restore_cash(
            tenant_id, account_id, actor, at, {"cancelled_orders": cancelled, "flattened": flattened}
        )

    def _clear_paper_book(self, tenant_id: str, account_id: str) -> None:
        """The simulated broker's orders and running totals: a reset account starts with an empty book."""
        table = DynamoTable("paper_orders")
        partition = tenant_account(tenant_id, account_id)
        for item in table.query(partition):
            table.delete({"pk": partition, "sk": item["sk"]})

    def _flatten(self, tenant_id: str, account_id: str, at: datetime) -> list[str]:
        flattened: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            writes: list[Write] = []
            symbols: list[str] = []
            for position in self.positions.list(tenant_id, account_id):
                if position.quantity == 0 and position.realized_pnl == 0:
                    continue
                symbols.append(position.symbol)
                zeroed = position.model_copy(
                    update={
                        "quantity": Decimal(0),
                        "average_price": Decimal(0),
                        "realized_pnl": Decimal(0),
                        "opened_at": None,
                        "last_loss_at": None,
                        "updated_at": at,
                    }
                )
                writes.append(self.positions.save_write(zeroed))
            try:
                for chunk in _chunks(writes, TRANSACTION_LIMIT):
                    transact(chunk)
            except TransactionConflict:
                backoff(attempt)
                continue
            flattened.extend(symbols)
            return sorted(set(flattened))
        raise AccountConflict(f"account {account_id!r} is changing concurrently; try the reset again")

    def _restore_cash(
        self, tenant_id: str, account_id: str, actor: str, at: datetime, details: dict[str, Any]
    ) -> Account:
        for attempt in range(MAX_ATTEMPTS):
            account = self.get(tenant_id, account_id)
            start = account.starting_cash
            restored = account.model_copy(
                update={
                    "cash": start,
                    "pending": {},
                    "trading_day": None,
                    "day_realized_pnl": Decimal(0),
                    "updated_at": at,
                }
            )
            entry = LedgerEntry(
                entry_id=entry_id(tenant_id, account_id, "reset", iso(at)),
                tenant_id=tenant_id,
                account_id=account_id,
                ts=at,
                kind=LedgerEntryKind.RESET,
                amount=start - account.cash,
                balance_after=start,
                reference="account reset",
            )
            event = self._event(
                tenant_id, at, actor, "account.reset", account_id,
                {**details, "cash_before": str(account.cash), "cash_after": str(start)},
            )  # fmt: skip
            try:
                transact(
                    [
                        self.accounts.replace_write(restored, account.risk_seq),
                        LedgerRepository().new_write(entry),
                        self.audit.new_write(event),
                    ]
                )
            except TransactionConflict:
                backoff(attempt)
                continue
            return restored.model_copy(update={"risk_seq": account.risk_seq + 1})
        raise AccountConflict(f"account {account_id!r} is changing concurrently; try the reset again")

    def delete(self, tenant_id: str, account_id: str, *, actor: str, at: datetime) -> None:
        account = self.get(tenant_id, account_id)
        self._not_in_use(tenant_id, account_id, "delete")
        open_orders = [o for o in OrderRepository().list_for_account(tenant_id, account_id) if not o.status.final]
        if open_orders:
            raise AccountConflict(
                f"cannot delete account {account_id!r}: {len(open_orders)} open orders; cancel them first"
            )
        if broker_kind(account.broker) in ("alpaca", "ccxt"):
            try:
                self._vault().delete(tenant_id, account_id, actor)
            except SecretStoreError as exc:
                raise CredentialsUnavailable(str(exc)) from None
        self.accounts.table.delete({"pk": tenant_id, "sk": account_id})
        self._record(tenant_id, at, actor, "account.deleted", account_id, {"broker": account.broker})

    # -- audit -----------------------------------------------------------------------------------

    def _event(
        self, tenant_id: str, at: datetime, actor: str, action: str, subject: str, details: dict[str, Any]
    ) -> AuditEvent:
        return AuditEvent(
            event_id=event_id(tenant_id, action, subject, iso(at), uuid.uuid4().hex),
            tenant_id=tenant_id,
            ts=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
        )

    def _record(
        self, tenant_id: str, at: datetime, actor: str, action: str, subject: str, details: dict[str, Any]
    ) -> None:
        self.audit.record(self._event(tenant_id, at, actor, action, subject, details))


def _chunks(writes: list[Write], size: int) -> Iterable[list[Write]]:
    for start in range(0, len(writes), size):
        yield writes[start : start + size]
