"""Bars archiver function: the `bars` table's stream -> Parquet objects in the history bucket (Athena).

The whole batch is archived together (one object per tenant, symbol, timeframe and day, named by its first
and last bar, so a redelivered batch overwrites its own objects). Invalid bars are dead-lettered to
`dead_events` with the reason and the rest of the batch is archived; an S3 failure fails the batch, which
Lambda retries (and finally sends to `dead_events`, the event source's on-failure destination).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.domain import Bar
from tradeflow.marketdata.archive import BarArchive
from tradeflow.marketdata.stream_bars import InvalidBar, tenant_bar
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("bars_archiver")
queues = SqsQueues()
archive = BarArchive()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    by_tenant: dict[str, list[Bar]] = defaultdict(list)
    for record in DynamoDBStreamEvent(event).records:
        # only new bars: TTL deletions (REMOVE) and rewrites of a stored bar (MODIFY) are not new history
        if record.event_name is None or record.event_name.name != "INSERT" or record.dynamodb is None:
            continue
        image = record.dynamodb.new_image
        try:
            found = tenant_bar(image)
        except InvalidBar as exc:
            reason = str(exc)
            queues.dead_letter("dead_events", str(image), "bars_archiver", record.event_id or "unknown", reason)
            logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason})
            continue
        by_tenant[found.tenant_id].append(found.bar)
    objects = rows = 0
    for tenant_id, bars in sorted(by_tenant.items()):
        for written in archive.write(tenant_id, bars):
            objects, rows = objects + 1, rows + written.rows
            logger.info("archived", extra={"event": "archived", "key": written.key, "rows": written.rows})
    metrics.add_metric(name="BarsArchived", unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name="ArchiveObjects", unit=MetricUnit.Count, value=objects)
    return {"batchItemFailures": []}
