"""Which broker adapter serves an account.

Broker SDKs are imported only on the path that needs them (design rule 9): the paper path never
imports alpaca-py or ccxt, and an Alpaca account never imports ccxt. A real broker's adapter is built
from the account's credentials (read from Secrets Manager, audited) and kept for a few minutes per warm
container, so a burst of orders does not read the secret once per order; it is wrapped in
`GuardedBroker` (read retries, the safe submit retry, the account's circuit breaker). When the broker
refuses the credentials, the account is halted with the broker's reason and the cached adapter dropped.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from tradeflow.accounts.credentials import (
    AlpacaCredentials,
    CcxtCredentials,
    broker_kind,
    read_broker_credentials,
)
from tradeflow.accounts.halts import CREDENTIALS_PREFIX, halt_account
from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.brokers.port import Broker, BrokerAuthFailed
from tradeflow.brokers.resilience import CircuitBreaker, CredentialsRefused, GuardedBroker
from tradeflow.domain import Account

ADAPTER_TTL_SECONDS = 300.0
_adapters: dict[tuple[str, str, str], tuple[float, Broker]] = {}
_lock = threading.Lock()


class UnsupportedBroker(LookupError):
    pass


def real_broker(account: Account, actor: str = "execution") -> Broker:
    """The SDK adapter of a broker account (not guarded), built from its credentials."""
    kind = broker_kind(account.broker)
    if kind not in ("alpaca", "ccxt"):
        raise UnsupportedBroker(f"account {account.account_id}: broker '{account.broker}' has no adapter")
    # a rotation changes `credentials_rotated_at`: an adapter holding the old secret is not reused
    key = (account.tenant_id, account.account_id, str(account.broker_config.get("credentials_rotated_at", "")))
    with _lock:
        cached = _adapters.get(key)
        if cached is not None and time.monotonic() - cached[0] < ADAPTER_TTL_SECONDS:
            return cached[1]
    credentials = read_broker_credentials(account.tenant_id, account.account_id, actor)
    adapter: Broker
    if kind == "alpaca":
        assert isinstance(credentials, AlpacaCredentials)
        from tradeflow.brokers.alpaca import AlpacaBroker

        adapter = AlpacaBroker.connect(account, credentials)
    else:
        assert isinstance(credentials, CcxtCredentials)
        from tradeflow.brokers.ccxt_exchange import CcxtBroker

        adapter = CcxtBroker.connect(account, credentials)
    with _lock:
        _adapters[key] = (time.monotonic(), adapter)
    return adapter


def forget_adapter(tenant_id: str, account_id: str) -> None:
    with _lock:
        for key in [k for k in _adapters if k[:2] == (tenant_id, account_id)]:
            del _adapters[key]


def _credentials_refused(account: Account, actor: str) -> CredentialsRefused:
    def hook(refused: BrokerAuthFailed) -> None:
        forget_adapter(account.tenant_id, account.account_id)
        halt_account(
            account.tenant_id,
            account.account_id,
            f"{CREDENTIALS_PREFIX} by {account.broker}: {refused.broker_message}",
            actor=actor,
        )

    return hook


def broker_for(account: Account, now: datetime, actor: str = "execution") -> Broker:
    if account.broker == "paper":
        config = PaperConfig.model_validate(account.broker_config)
        return PaperBroker(account.tenant_id, account.account_id, config, clock=lambda: now)
    inner = real_broker(account, actor)
    breaker = CircuitBreaker(account.tenant_id, account.account_id)
    return GuardedBroker(inner, breaker, on_auth_failure=_credentials_refused(account, actor))
