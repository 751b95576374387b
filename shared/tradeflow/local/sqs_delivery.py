"""SQS -> Lambda delivery, as an event source mapping with `ReportBatchItemFailures` does it.

Each poller long-polls its queue, invokes the function with a real SQS batch event, deletes the
messages that succeeded and leaves the ones reported in `batchItemFailures` (or the whole batch if
the invocation raised) to reappear after their visibility timeout; SQS (moto) redrives a message to
its dead-letter queue once its receive count passes `maxReceiveCount`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from tradeflow.catalogue import FUNCTIONS, QUEUES
from tradeflow.local.environment import LOCAL_REGION
from tradeflow.local.lambdas import LocalLambdas
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.scheduling.schedules import LOCAL_ACCOUNT

log = logging.getLogger("tradeflow.local")


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    records = []
    for m in messages:
        attributes = dict(m.get("Attributes", {}))
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": LOCAL_REGION,
            }
        )
    return {"Records": records}


class SqsPoller(threading.Thread):
    def __init__(self, function: str, lambdas: LocalLambdas, stop: threading.Event, wait_seconds: int = 1) -> None:
        source = FUNCTIONS[function].queue_source
        assert source is not None
        super().__init__(name=f"sqs-{function}", daemon=True)
        self.function = function
        self.source = source
        self.lambdas = lambdas
        self.stop_event = stop
        self.wait_seconds = wait_seconds
        self.queue = QUEUES[source.queue]
        self.url = SqsQueues().url(self.queue.physical_name())
        self.arn = f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{self.queue.physical_name()}"
        self.batches = 0
        self.idle = threading.Event()

    def run(self) -> None:
        sqs = client("sqs")
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                response = sqs.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=self.source.batch_size,
                    WaitTimeSeconds=self.wait_seconds,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:  # the server is going away at shutdown
                if self.stop_event.is_set():
                    return
                log.warning("polling %s failed: %s", self.queue.physical_name(), exc)
                self.stop_event.wait(0.5)
                continue
            messages = response.get("Messages", [])
            if not messages:
                self.idle.set()
                if time.monotonic() - started < self.wait_seconds / 2:
                    # moto ends a long poll at once while invisible messages wait out their visibility
                    # timeout: back off instead of spinning on the queue.
                    self.stop_event.wait(0.2)
                continue
            self.idle.clear()
            self.deliver(messages)

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        sqs = client("sqs")
        self.batches += 1
        try:
            result = self.lambdas.invoke(self.function, sqs_event(self.arn, messages)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception as exc:
            log.error("%s failed its whole batch of %d: %s", self.function, len(messages), exc)
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
