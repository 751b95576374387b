"""What the streamer must stream: every broker account with a deployment that is not stopped.

The deployments table is scanned across all tenants (the streamer is a platform process, not a tenant's
request), each deployment joined to its account, and one `AccountTarget` built per broker account with
the union of its deployments' symbols and bar timeframes. Paper accounts are left out: the paper
exchange fills their orders from the bars table, no broker stream is involved. Paused deployments keep
their account streamed: they resume without a gap in bars, and their open orders may still fill.

`TargetChanges` compares two readings, so the streamer starts the streams of a new account, stops
those of an account that no longer trades, and re-subscribes an account whose symbols changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from tradeflow.domain import Account, Deployment
from tradeflow.domain.deployments import DeploymentStatus
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.streaming.source import AccountTarget

log = logging.getLogger("tradeflow.streaming")

AccountKey = tuple[str, str]  # (tenant, account)
CCXT_PREFIX = "ccxt:"


def streamed_broker(broker: str) -> bool:
    """Brokers with streams: Alpaca and ccxt exchanges (`ccxt:<exchange id>`); not the paper broker."""
    return broker == "alpaca" or (broker.startswith(CCXT_PREFIX) and len(broker) > len(CCXT_PREFIX))


def key_of(target: AccountTarget) -> AccountKey:
    return target.tenant_id, target.account_id


def build_targets(deployments: Iterable[Deployment], accounts: Mapping[AccountKey, Account]) -> list[AccountTarget]:
    """One target per broker account that has deployments not stopped (pure: for tests and reuse)."""
    symbols: dict[AccountKey, set[str]] = {}
    timeframes: dict[AccountKey, set[str]] = {}
    for deployment in deployments:
        if deployment.status is DeploymentStatus.STOPPED:
            continue
        key = (deployment.tenant_id, deployment.account_id)
        account = accounts.get(key)
        if account is None or not streamed_broker(account.broker):
            continue
        symbols.setdefault(key, set()).update(deployment.symbols)
        timeframes.setdefault(key, set()).add(deployment.timeframe)
    return [
        AccountTarget(
            tenant_id=tenant,
            account_id=account_id,
            broker=accounts[(tenant, account_id)].broker,
            symbols=frozenset(symbols[(tenant, account_id)]),
            timeframes=frozenset(timeframes[(tenant, account_id)]),
        )
        for tenant, account_id in sorted(symbols)
    ]


def read_targets() -> list[AccountTarget]:
    """Scan every tenant's deployments and join their accounts (one read per account)."""
    deployments: list[Deployment] = []
    for item in DynamoTable("deployments").scan():
        try:
            deployment = Deployment.model_validate(item)
        except ValidationError as invalid:
            # one bad record must not stop every other account's streams
            log.error("skipping unreadable deployment %s/%s: %s", item.get("pk"), item.get("sk"), invalid)
            continue
        if deployment.status is not DeploymentStatus.STOPPED:
            deployments.append(deployment)
    repository = AccountRepository()
    accounts: dict[AccountKey, Account] = {}
    for key in {(d.tenant_id, d.account_id) for d in deployments}:
        account = repository.get(*key)
        if account is not None:
            accounts[key] = account
    return build_targets(deployments, accounts)


@dataclass(frozen=True)
class TargetChanges:
    added: list[AccountTarget]
    removed: list[AccountTarget]
    resubscribed: list[AccountTarget]  # the new target of an account whose symbols changed
    retuned: list[AccountTarget]  # only the timeframes changed: nothing to reconnect

    @classmethod
    def between(cls, old: Mapping[AccountKey, AccountTarget], new: Iterable[AccountTarget]) -> TargetChanges:
        fresh = {key_of(t): t for t in new}
        added = [t for k, t in fresh.items() if k not in old]
        removed = [t for k, t in old.items() if k not in fresh]
        resubscribed: list[AccountTarget] = []
        retuned: list[AccountTarget] = []
        for key, target in fresh.items():
            before = old.get(key)
            if before is None or before == target:
                continue
            if before.symbols != target.symbols or before.broker != target.broker:
                resubscribed.append(target)
            else:
                retuned.append(target)
        return cls(added, removed, resubscribed, retuned)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.resubscribed or self.retuned)
