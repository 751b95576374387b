"""Which broker adapter serves an account. Broker SDKs are imported only on the path that needs
them (design rule 9): the paper path never imports alpaca-py or ccxt."""

from __future__ import annotations

from datetime import datetime

from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.brokers.port import Broker
from tradeflow.domain import Account


class UnsupportedBroker(LookupError):
    pass


def broker_for(account: Account, now: datetime) -> Broker:
    if account.broker == "paper":
        config = PaperConfig.model_validate(account.broker_config)
        return PaperBroker(account.tenant_id, account.account_id, config, clock=lambda: now)
    raise UnsupportedBroker(f"account {account.account_id}: broker '{account.broker}' has no adapter in this build")
