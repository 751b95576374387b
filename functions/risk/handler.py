"""Risk function: SQS FIFO batch of signals -> order intents or recorded rejections."""

from __future__ import annotations

from typing import Any

# Imported before anything imports pydantic: Powertools' batch utility then skips importing all of its
# pydantic parser models (~60 ms of cold start for types this function never uses).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.manual.model import ManualOrder
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.risk.messages import parse_signals_message
from tradeflow.risk.service import RiskService
from tradeflow.runtime.observability import observability
from tradeflow.runtime.queue_consumer import QueueConsumer

logger, tracer, metrics = observability("risk")
queues = SqsQueues()
service = RiskService(queues)
consumer = QueueConsumer("signals", logger, metrics, queues)


def record_handler(record: SQSRecord) -> None:
    logger.thread_safe_clear_keys()
    metrics.add_metric(name="SignalMessages", unit=MetricUnit.Count, value=1)
    signal = consumer.parse(record, parse_signals_message)  # a strategy Signal or a ManualOrder
    if signal is None:
        return
    logger.thread_safe_append_keys(correlation_id=signal.signal_id, tenant_id=signal.tenant_id)

    with consumer.attempt(
        record,
        on_final=lambda reason: service.dead_letter(signal, reason),
        on_retry=lambda reason: service.signals.note_error(signal.tenant_id, signal.signal_id, reason),
    ):
        if isinstance(signal, ManualOrder):
            result = service.assess_manual(signal)
        else:
            result = service.assess(signal, queued_seconds(record))
    metrics.add_metric(name=f"Risk{result.status.capitalize()}", unit=MetricUnit.Count, value=1)
    intent = result.intent
    logger.info(
        "risk decision",
        extra={
            "event": "risk",
            "status": result.status,
            "reason": result.reason,
            "symbol": signal.symbol,
            "action": signal.side.value if isinstance(signal, ManualOrder) else signal.action.value,
            "side": intent.side.value if intent else None,
            "quantity": str(intent.quantity) if intent else None,
            "client_order_id": intent.client_order_id if intent else None,
        },
    )


def queued_seconds(record: SQSRecord) -> float | None:
    """Time between the message being sent and first received, from its own attributes."""
    sent = record.attributes.get("SentTimestamp")  # .get: an event without them is still decided
    first = record.attributes.get("ApproximateFirstReceiveTimestamp")
    if not sent or not first:
        return None
    return max(0.0, (int(first) - int(sent)) / 1000)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.process(event, context, record_handler)
