"""What every SQS-triggered function does with a record besides its business logic.

- A record that cannot be parsed will never succeed: it is moved to the queue's dead-letter queue at
  once with the reason as a message attribute, logged, counted, and reported as processed — so it
  neither blocks its FIFO group nor is retried pointlessly (design rule 8).
- A transient failure is re-raised, so Powertools reports it in `batchItemFailures` and SQS redelivers
  it after the visibility timeout. On the last delivery before redrive (`ApproximateReceiveCount` =
  the catalogue's `max_receive_count`) the caller's `on_final` records the dead-letter outcome with
  the reason first, so the signal still ends with exactly one recorded outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tradeflow.catalogue import QUEUES
from tradeflow.domain.validation import describe
from tradeflow.messaging.sqs import MessageQueue

T = TypeVar("T")


class QueueConsumer:
    def __init__(self, queue: str, logger: Logger, metrics: EphemeralMetrics, queues: MessageQueue) -> None:
        self.queue = queue
        self.spec = QUEUES[queue]
        self.logger = logger
        self.metrics = metrics
        self.queues = queues

    def parse(self, record: SQSRecord, parser: Callable[[str], T]) -> T | None:
        try:
            return parser(record.body)
        except ValidationError as exc:
            reason = f"invalid {self.queue} message: {describe(exc)}"
        except ValueError as exc:
            reason = f"invalid {self.queue} message: {exc}"
        self.queues.dead_letter(
            self.queue,
            record.body,
            record.attributes.message_group_id or "invalid",
            record.message_id,
            reason,
        )
        self.logger.error(
            "dead-lettered", extra={"event": "dead_letter", "reason": reason, "message_id": record.message_id}
        )
        self.metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        return None

    def final_attempt(self, record: SQSRecord) -> bool:
        return int(record.attributes.approximate_receive_count or "1") >= self.spec.max_receive_count

    @contextmanager
    def attempt(
        self,
        record: SQSRecord,
        on_final: Callable[[str], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Run the business logic; on an exception call `on_final(reason)` on the last delivery or
        `on_retry(reason)` before it, then re-raise so the record is reported as failed."""
        try:
            yield
        except Exception as exc:
            final = self.final_attempt(record)
            reason = f"{type(exc).__name__}: {exc}"
            try:
                callback = on_final if final else on_retry
                if callback is not None:
                    callback(reason)
            finally:
                self.logger.warning(
                    "attempt failed", extra={"event": "attempt_failed", "reason": reason, "final": final}
                )
                self.metrics.add_metric(name="ProcessingFailures", unit=MetricUnit.Count, value=1)
            raise

    def process(
        self, event: dict[str, Any], context: LambdaContext, record_handler: Callable[[SQSRecord], None]
    ) -> dict[str, Any]:
        """Run a FIFO batch: a failed record fails the rest of its message group only (order within a
        group is kept), and failures come back as `batchItemFailures`."""
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)  # one per invocation: it holds state
        # Report failed records even when every record of the batch failed: raising instead would turn a
        # routine retry (one transient failure in a one-message batch) into a Lambda invocation error.
        processor.raise_on_entire_batch_failure = False
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )
