"""Backtest worker: SQS `backtests` (standard queue, batch of 1) -> run the job, store progress and result.

- An undecodable message, or one naming a job that does not exist (unknown tenant or job), can never
  succeed: it is dead-lettered at once with the reason and reported as processed (design rule 8).
- A job that fails on its own terms (its strategy no longer builds, its data is refused) is recorded
  `failed` with the reason; the message is done.
- A transient failure (AWS) is reported in `batchItemFailures` so SQS redelivers it; on the last
  delivery (the queue's `max_receive_count`) the job is first recorded `failed` with the reason, then
  SQS moves the message to the dead-letter queue.
- Redelivery of a finished job does nothing (`BacktestJobs.run` returns `already_done`).
"""

from __future__ import annotations

from typing import Any

# Imported before anything imports pydantic (see functions/risk/handler.py).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.backtest.jobs import BacktestJobs, JobMessage
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability
from tradeflow.runtime.queue_consumer import QueueConsumer

logger, tracer, metrics = observability("backtest_worker")
queues = SqsQueues()
service = BacktestJobs()
consumer = QueueConsumer("backtests", logger, metrics, queues)


def record_handler(record: SQSRecord) -> None:
    logger.thread_safe_clear_keys()
    message = consumer.parse(record, JobMessage.model_validate_json)
    if message is None:
        return
    logger.thread_safe_append_keys(correlation_id=message.job_id, tenant_id=message.tenant_id)
    with consumer.attempt(record, on_final=lambda reason: service.fail(message.tenant_id, message.job_id, reason)):
        outcome = service.run(message.tenant_id, message.job_id)
    if outcome == "unknown_job":
        reason = f"unknown backtest job {message.job_id!r} of tenant {message.tenant_id!r}"
        queues.dead_letter("backtests", record.body, "", record.message_id, reason)
        logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason, "message_id": record.message_id})
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name=f"Backtest_{outcome}", unit=MetricUnit.Count, value=1)
    logger.info("backtest job", extra={"event": "backtest", "job_id": message.job_id, "outcome": outcome})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)  # a standard queue: no message groups
    processor.raise_on_entire_batch_failure = False  # a failed job is a routine retry, not an invocation error
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
