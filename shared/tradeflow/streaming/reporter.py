"""Order updates from a broker stream, onto the `orders` queue the execution function consumes.

The streamer never touches the books itself: each update becomes a `BrokerUpdate` message, exactly
what the paper exchange sends for the paper broker, and the execution function applies it through the
same ledger path as every other fill. That path is idempotent: fill ids are derived from the order and
the broker's fill reference, and fills reported as running totals (`cumulative_quantity`) are applied
only beyond what the ledger already holds, so an update seen twice (a stream replay, a redelivery, the
REST snapshot the execution function took after submitting) is recorded once. The FIFO queue's
deduplication id (order, status, number of fills, filled quantity) also drops exact repeats within its
5-minute window.

Orders whose client order id we did not mint (placed in the broker's own app, by another tool) are not
ours to book: they are logged and skipped here, and reconciliation reports them as foreign orders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tradeflow.brokers.port import BrokerOrder
from tradeflow.brokers.resilience import jittered
from tradeflow.execution.messages import BrokerUpdate
from tradeflow.manual.model import ORDER_PREFIX as MANUAL_ORDER_PREFIX
from tradeflow.messaging.sqs import MessageQueue

log = logging.getLogger("tradeflow.streaming")

STRATEGY_ORDER_PREFIX = "tf-"  # see tradeflow.domain.ids.client_order_id
SEND_ATTEMPTS = 4


def is_ours(client_order_id: str) -> bool:
    """Minted by us: a strategy signal's order (`tf-…`) or a manual order placed through the API (`tfm-…`)."""
    return client_order_id.startswith((STRATEGY_ORDER_PREFIX, MANUAL_ORDER_PREFIX))


class OrderReporter:
    def __init__(self, queue: MessageQueue, sleep: Callable[[float], None] = time.sleep) -> None:
        self.queue = queue
        self.sleep = sleep

    def report(self, tenant_id: str, account_id: str, order: BrokerOrder) -> BrokerUpdate | None:
        """Queue the update (blocking; retried on transient SQS errors). None when the order is not ours.
        Raises when every attempt failed: the caller counts it; reconciliation repairs the books."""
        if not is_ours(order.client_order_id):
            log.info(
                "skipping an order update of %s/%s with a foreign client order id %r (%s %s %s)",
                tenant_id,
                account_id,
                order.client_order_id[:64],
                order.side.value,
                order.quantity,
                order.symbol,
            )
            return None
        update = BrokerUpdate(tenant_id=tenant_id, account_id=account_id, order=order)
        body = update.model_dump_json()
        dedup = update.dedup_id
        for attempt in range(SEND_ATTEMPTS):
            try:
                self.queue.send("orders", body, update.group_id, dedup)
            except Exception as error:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                wait = jittered(attempt)
                log.warning("could not queue the update of %s (%s); retry in %.2fs", order.client_order_id, error, wait)
                self.sleep(wait)
            else:
                return update
        raise AssertionError("unreachable")  # pragma: no cover
