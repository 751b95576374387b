"""Paper exchange function: DynamoDB stream of new bars -> fills of resting paper orders."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tradeflow.brokers.paper_exchange import PaperExchange
from tradeflow.domain import Bar
from tradeflow.domain.validation import describe
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("paper_exchange")
queues = SqsQueues()
exchange = PaperExchange(queues)


def record_handler(record: DynamoDBRecord) -> None:
    metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=1)
    if record.event_name is None or record.event_name.name != "INSERT" or record.dynamodb is None:
        return  # bar corrections (MODIFY) and TTL deletions do not trade
    image = record.dynamodb.new_image
    try:
        tenant_id = str(image["tenant_id"])
        bar = Bar.model_validate(image)
    except (KeyError, ValidationError) as exc:
        reason = f"invalid bar in stream: {describe(exc) if isinstance(exc, ValidationError) else exc}"
        queues.dead_letter("dead_events", str(image), "paper_exchange", record.event_id or "unknown", reason)
        logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason})
        return
    metrics.add_metric(name="BarsMatched", unit=MetricUnit.Count, value=1)
    for update in exchange.on_bar(tenant_id, bar):
        metrics.add_metric(name="PaperOrderUpdates", unit=MetricUnit.Count, value=1)
        logger.info(
            "paper order update",
            extra={
                "event": "paper_update",
                "client_order_id": update.order.client_order_id,
                "status": update.order.status.value,
                "symbol": bar.symbol,
            },
        )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
