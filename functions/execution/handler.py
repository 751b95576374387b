"""Execution function: SQS FIFO batch of order intents and broker updates -> broker and books."""

from __future__ import annotations

from typing import Any

# Imported before anything imports pydantic: Powertools' batch utility then skips importing all of its
# pydantic parser models (~60 ms of cold start for types this function never uses).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.brokers.factory import broker_for
from tradeflow.domain import OrderIntent
from tradeflow.execution.messages import CancelRequest, orders_message
from tradeflow.execution.service import ExecutionService
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability
from tradeflow.runtime.queue_consumer import QueueConsumer

logger, tracer, metrics = observability("execution")
queues = SqsQueues()
service = ExecutionService(broker_for)
consumer = QueueConsumer("orders", logger, metrics, queues)


def record_handler(record: SQSRecord) -> None:
    logger.thread_safe_clear_keys()
    metrics.add_metric(name="OrderMessages", unit=MetricUnit.Count, value=1)
    message = consumer.parse(record, orders_message.validate_json)
    if message is None:
        return
    if isinstance(message, OrderIntent):
        intent = message
        logger.thread_safe_append_keys(correlation_id=intent.signal_id, tenant_id=intent.tenant_id)
        with consumer.attempt(
            record,
            on_final=lambda reason: service.abandon(intent, reason),
            on_retry=lambda reason: service.signals.note_error(intent.tenant_id, intent.signal_id, reason),
        ):
            result = service.execute(intent)
    elif isinstance(message, CancelRequest):
        cancel = message
        logger.thread_safe_append_keys(tenant_id=cancel.tenant_id, client_order_id=cancel.client_order_id)
        with consumer.attempt(record):
            result = service.cancel(
                cancel.tenant_id, cancel.account_id, cancel.client_order_id, cancel.requested_at, cancel.requested_by
            )
    else:
        update = message
        logger.thread_safe_append_keys(tenant_id=update.tenant_id, client_order_id=update.order.client_order_id)
        with consumer.attempt(record):
            result = service.apply_update(update.tenant_id, update.account_id, update.order)
        if result.order is not None and result.order.signal_id:
            logger.thread_safe_append_keys(correlation_id=result.order.signal_id)
    order = result.order
    for applied in result.fills or []:
        metrics.add_metric(name="Fills", unit=MetricUnit.Count, value=1)
        logger.info(
            "fill",
            extra={
                "event": "fill",
                "signal_id": applied.order.signal_id,
                "client_order_id": applied.fill.client_order_id,
                "symbol": applied.fill.symbol,
                "side": applied.fill.side.value,
                "quantity": str(applied.fill.quantity),
                "price": str(applied.fill.price),
                "fee": str(applied.fill.fee),
                "realized_pnl": str(applied.realized_pnl),
                "position": str(applied.position_quantity),
                "cash": str(applied.cash),
            },
        )
    logger.info(
        "order",
        extra={
            "event": "order",
            "status": result.status,
            "client_order_id": result.client_order_id,
            "order_status": order.status.value if order else None,
            "symbol": order.symbol if order else None,
            "side": order.side.value if order else None,
            "quantity": str(order.quantity) if order else None,
            "detail": result.detail,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context, record_handler)
