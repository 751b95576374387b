"""Broker credentials: stored only in Secrets Manager, shown only as a hint, every access audited.

- Where: one secret per account, `tradeflow-<stage>/<tenant>/<account>` (see `tradeflow.secrets`);
  the accounts table holds the secret's name and the hint, never a value.
- The hint: the first 4 and last 4 characters of the key id (`PKAB…WXYZ`); key ids are at least
  16 characters, so a hint shows at most half of one. No part of a secret is ever shown.
- Audit: `credentials.created`, `credentials.rotated`, `credentials.read` (the system reading them for a
  broker adapter) and `credentials.deleted`, each with actor, account, broker and secret name — never
  the values.
- Secret fields are `SecretStr`: their repr, str and default serialisation are masked, so a model
  that ends up in an exception or a log line shows `**********`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from tradeflow.accounts.exchanges import known_exchange
from tradeflow.domain import AuditEvent
from tradeflow.domain.ids import event_id
from tradeflow.secrets import SecretNotFound, SecretsManagerStore, SecretStore, secret_name
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository

KEY_ID_MIN = 16
KeyId = Annotated[
    str,
    Field(min_length=KEY_ID_MIN, max_length=512, pattern=r"^\S+$", description="the key's public id"),
]
SecretText = Annotated[SecretStr, Field(min_length=8, max_length=4096, description="never shown again")]


def key_hint(key_id: str) -> str:
    """First 4 … last 4 of a key id."""
    if len(key_id) < KEY_ID_MIN:  # never stored (validation refuses them); masked fully all the same
        return "…"
    return f"{key_id[:4]}…{key_id[-4:]}"


class AlpacaCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["alpaca"] = "alpaca"
    api_key_id: KeyId
    secret_key: SecretText
    paper: bool = Field(default=True, description="Alpaca's paper trading endpoint (false: live)")

    @property
    def key_id(self) -> str:
        return self.api_key_id

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "alpaca",
            "api_key_id": self.api_key_id,
            "secret_key": self.secret_key.get_secret_value(),
            "paper": self.paper,
        }


class CcxtCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["ccxt"] = "ccxt"
    exchange: str = Field(min_length=1, max_length=64, description="a ccxt exchange id, e.g. binance, kraken")
    api_key: KeyId
    secret: SecretText
    password: SecretText | None = Field(default=None, description="the passphrase some exchanges require")
    sandbox: bool = Field(default=True, description="the exchange's sandbox/testnet (false: live)")

    @field_validator("exchange")
    @classmethod
    def _known(cls, value: str) -> str:
        if not known_exchange(value):
            raise ValueError(f"unknown exchange {value!r}: use a ccxt exchange id such as binance, kraken, coinbase")
        return value

    @property
    def key_id(self) -> str:
        return self.api_key

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "ccxt",
            "exchange": self.exchange,
            "api_key": self.api_key,
            "secret": self.secret.get_secret_value(),
            "password": self.password.get_secret_value() if self.password else None,
            "sandbox": self.sandbox,
        }


BrokerCredentials = AlpacaCredentials | CcxtCredentials


class CredentialsNotFound(LookupError):
    """The account does not exist for the tenant, is not a broker account, or has no credentials."""


def broker_kind(broker: str) -> str:
    """`alpaca` or `ccxt` for a broker account's `broker` field (`ccxt:<exchange>`), else the broker."""
    return broker.split(":", 1)[0]


def _parse(value: dict[str, Any]) -> BrokerCredentials:
    if value.get("kind") == "ccxt":
        return CcxtCredentials.model_validate(value)
    return AlpacaCredentials.model_validate(value)


class CredentialVault:
    """Stores, rotates, reads and deletes broker credentials; writes an audit event for each access."""

    def __init__(self, store: SecretStore | None = None) -> None:
        self.store: SecretStore = store or SecretsManagerStore()
        self.audit = AuditRepository()

    def store_credentials(
        self, tenant_id: str, account_id: str, credentials: BrokerCredentials, actor: str, *, rotated: bool = False
    ) -> str:
        """Write the credentials (a new version on rotation) and audit it; returns the secret's name."""
        name = secret_name(tenant_id, account_id)
        self.store.put(name, credentials.payload(), description=f"broker credentials of {tenant_id}/{account_id}")
        action = "credentials.rotated" if rotated else "credentials.created"
        self._audit(tenant_id, account_id, actor, action, {"broker": credentials.kind, "secret": name})
        return name

    def read(self, tenant_id: str, account_id: str, actor: str) -> BrokerCredentials:
        """The system's read (for the broker adapters): audited whether or not it finds them."""
        name = secret_name(tenant_id, account_id)
        account = AccountRepository().get(tenant_id, account_id)
        if account is None or broker_kind(account.broker) not in ("alpaca", "ccxt"):
            self._audit(tenant_id, account_id, actor, "credentials.read", {"secret": name, "outcome": "no_account"})
            raise CredentialsNotFound(f"account {account_id!r} has no broker credentials")
        try:
            value = self.store.get(name)
        except SecretNotFound:
            self._audit(tenant_id, account_id, actor, "credentials.read", {"secret": name, "outcome": "missing"})
            raise CredentialsNotFound(f"account {account_id!r} has no broker credentials") from None
        self._audit(
            tenant_id,
            account_id,
            actor,
            "credentials.read",
            {"secret": name, "outcome": "ok", "broker": account.broker},
        )
        return _parse(value)

    def delete(self, tenant_id: str, account_id: str, actor: str) -> str:
        """Schedule the secret's deletion (recoverable for the window) and audit it."""
        name = secret_name(tenant_id, account_id)
        self.store.schedule_deletion(name)
        self._audit(tenant_id, account_id, actor, "credentials.deleted", {"secret": name})
        return name

    def _audit(self, tenant_id: str, account_id: str, actor: str, action: str, details: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        self.audit.record(
            AuditEvent(
                event_id=event_id(tenant_id, action, account_id, uuid.uuid4().hex),  # one event per access
                tenant_id=tenant_id,
                ts=now,
                actor=actor,
                action=action,
                subject=account_id,
                details=details,
            )
        )


def read_broker_credentials(tenant_id: str, account_id: str, actor: str) -> BrokerCredentials:
    """What the broker adapters call to get an account's credentials (audited as `credentials.read`)."""
    return CredentialVault().read(tenant_id, account_id, actor)
