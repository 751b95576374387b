"""What a local run did: counts of signals, orders, fills, rejections and dead letters, and equity.

Equity per account is cash plus every position marked at its symbol's latest bar close.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from tradeflow.catalogue import QUEUES
from tradeflow.domain import Account, Position, SignalRecord
from tradeflow.domain.base import Model
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.dynamo import DynamoTable


class AccountSummary(Model):
    tenant_id: str
    account_id: str
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    realized_pnl: Decimal
    open_positions: dict[str, str]


class Summary(Model):
    signals: int
    orders: int
    fills: int
    rejections: int
    dead_letters: int
    equity: dict[str, str]  # "tenant/account" -> equity
    outcomes: dict[str, int]
    accounts: list[AccountSummary]

    def public(self) -> dict[str, Any]:
        """The `--summary-json` document."""
        return {
            "signals": self.signals,
            "orders": self.orders,
            "fills": self.fills,
            "rejections": self.rejections,
            "dead_letters": self.dead_letters,
            "equity": self.equity,
            "outcomes": self.outcomes,
        }


def dead_letter_depth() -> int:
    sqs = client("sqs")
    queues = SqsQueues()
    total = 0
    for spec in QUEUES.values():
        target = spec.dead_letter_target()
        attributes = sqs.get_queue_attributes(
            QueueUrl=queues.url(target),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        total += int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
    return total


def summarize(timeframe: str = "1m") -> Summary:
    signals = [SignalRecord.model_validate(i) for i in DynamoTable("signals").scan()]
    outcomes = Counter(s.outcome.value for s in signals)
    orders = sum(1 for _ in DynamoTable("orders").scan())
    fills = sum(1 for _ in DynamoTable("fills").scan())
    bars = BarRepository()
    positions = [Position.model_validate(i) for i in DynamoTable("positions").scan()]
    accounts = []
    for item in DynamoTable("accounts").scan():
        account = Account.model_validate(item)
        held = [p for p in positions if p.tenant_id == account.tenant_id and p.account_id == account.account_id]
        value = Decimal(0)
        for p in held:
            if p.quantity == 0:
                continue
            latest = bars.latest(account.tenant_id, p.symbol, timeframe, _far_future(), 1)
            mark = latest[-1].close if latest else (p.last_price or p.average_price)
            value += p.quantity * mark
        accounts.append(
            AccountSummary(
                tenant_id=account.tenant_id,
                account_id=account.account_id,
                cash=account.cash,
                positions_value=value,
                equity=account.cash + value,
                realized_pnl=sum((p.realized_pnl for p in held), Decimal(0)),
                open_positions={p.symbol: str(p.quantity) for p in held if p.quantity != 0},
            )
        )
    return Summary(
        signals=len(signals),
        orders=orders,
        fills=fills,
        rejections=outcomes.get("rejected", 0),
        dead_letters=dead_letter_depth(),
        equity={f"{a.tenant_id}/{a.account_id}": str(a.equity.quantize(Decimal("0.01"))) for a in accounts},
        outcomes=dict(sorted(outcomes.items())),
        accounts=accounts,
    )


def _far_future() -> Any:
    from datetime import UTC, datetime

    return datetime(9999, 1, 1, tzinfo=UTC)
