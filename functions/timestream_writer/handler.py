"""Timestream writer function (optional, `-c timestream=true`): the `bars` table's stream -> Timestream for
LiveAnalytics (see `tradeflow.marketdata.timestream` for why it is optional).

Invalid bars are dead-lettered to `dead_events` with the reason; bars older than the memory store are
logged and skipped; any other rejection or error fails the batch, which Lambda retries (writes are
idempotent) and finally sends to `dead_events`, the event source's on-failure destination.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.marketdata.stream_bars import InvalidBar, TenantBar, tenant_bar
from tradeflow.marketdata.timestream import TimestreamWriter
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("timestream_writer")
queues = SqsQueues()
writer = TimestreamWriter()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bars: list[TenantBar] = []
    for record in DynamoDBStreamEvent(event).records:
        # only new bars: TTL deletions (REMOVE) and rewrites of a stored bar (MODIFY) are not new data
        if record.event_name is None or record.event_name.name != "INSERT" or record.dynamodb is None:
            continue
        image = record.dynamodb.new_image
        try:
            bars.append(tenant_bar(image))
        except InvalidBar as exc:
            reason = str(exc)
            queues.dead_letter("dead_events", str(image), "timestream_writer", record.event_id or "unknown", reason)
            logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason})
    outcome = writer.write(bars)
    for skipped in outcome.skipped:
        logger.warning(
            "skipped: outside the memory store",
            extra={"event": "timestream_skipped", "symbol": skipped.symbol, "ts": skipped.ts, "reason": skipped.reason},
        )
    metrics.add_metric(name="TimestreamRecords", unit=MetricUnit.Count, value=outcome.written)
    metrics.add_metric(name="TimestreamSkipped", unit=MetricUnit.Count, value=len(outcome.skipped))
    return {"batchItemFailures": []}
