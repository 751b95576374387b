"""The paper exchange: turns each new bar into fills of resting paper orders, reported on the
`orders` queue exactly as a real broker's trade-updates stream is reported by the streamer."""

from __future__ import annotations

from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import Bar
from tradeflow.execution.messages import BrokerUpdate
from tradeflow.messaging.sqs import MessageQueue
from tradeflow.storage.accounts import AccountRepository


class PaperExchange:
    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self.accounts = AccountRepository()

    def on_bar(self, tenant_id: str, bar: Bar) -> list[BrokerUpdate]:
        def broker(account_id: str) -> PaperBroker:
            account = self.accounts.get(tenant_id, account_id)
            config = PaperConfig.model_validate(account.broker_config if account else {})
            return PaperBroker(tenant_id, account_id, config, clock=lambda: bar.ts)

        updates: list[BrokerUpdate] = []

        def report(account_id: str, order: BrokerOrder) -> None:
            update = BrokerUpdate(tenant_id=tenant_id, account_id=account_id, order=order)
            self.queue.send("orders", update.model_dump_json(), update.group_id, update.dedup_id)
            updates.append(update)

        PaperBroker.match_all(tenant_id, bar, broker, report)
        return updates
