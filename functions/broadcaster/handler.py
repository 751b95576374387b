"""Broadcaster function: DynamoDB stream batches of the books (orders, fills, positions, evaluations, signal
journal, controls, bars) -> live updates to the subscribed WebSocket connections of each record's tenant.
See tradeflow.realtime.changes (what each change means) and tradeflow.realtime.broadcast (the fan-out)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.messaging.sqs import SqsQueues
from tradeflow.realtime.broadcast import Broadcaster, broadcast_stream_batch
from tradeflow.realtime.changes import ChangeTranslator
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("broadcaster")
queues = SqsQueues()
translator = ChangeTranslator()
broadcaster = Broadcaster()


def dead_letter(record: Mapping[str, Any], reason: str) -> None:
    event_id = str(record.get("eventID", "unknown"))
    queues.dead_letter("dead_events", json.dumps(record, default=str), "broadcaster", event_id, reason)
    logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason, "event_id": event_id})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # "now" only judges which connections are still alive: wall time, like API Gateway's own idle timeout
    outcome = broadcast_stream_batch(event.get("Records", []), datetime.now(UTC), translator, broadcaster, dead_letter)
    report = outcome.report
    metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=outcome.records)
    metrics.add_metric(name="Updates", unit=MetricUnit.Count, value=report.changes)
    metrics.add_metric(name="UpdatesDelivered", unit=MetricUnit.Count, value=report.delivered)
    metrics.add_metric(name="ConnectionsGone", unit=MetricUnit.Count, value=report.gone)
    metrics.add_metric(name="PostFailures", unit=MetricUnit.Count, value=report.failed)
    if report.changes:
        # every bar and evaluation is broadcast: the routine line is debug (the metrics count it); trouble warns
        log = logger.warning if report.failed or outcome.dead_lettered else logger.debug
        log(
            "broadcast",
            extra={
                "event": "broadcast",
                "records": outcome.records,
                "updates": report.changes,
                "connections": report.connections,
                "delivered": report.delivered,
                "gone": report.gone,
                "failed": report.failed,
                "errors": report.errors,
                "dead_lettered": outcome.dead_lettered,
            },
        )
    return {"batchItemFailures": []}  # unreadable records are dead-lettered; see broadcast_stream_batch
