"""Sending to the catalogue's FIFO queues, and dead-lettering a message we know is hopeless."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from tradeflow.catalogue import QUEUES
from tradeflow.runtime.aws import client


class MessageQueue(Protocol):
    def send(self, queue: str, body: str, group_id: str, dedup_id: str) -> None: ...

    def dead_letter(self, queue: str, body: str, group_id: str, dedup_id: str, reason: str) -> None: ...


class SqsQueues:
    """The SQS implementation; queue URLs are resolved once per process."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def url(self, physical_name: str) -> str:
        with self._lock:
            if physical_name not in self._urls:
                self._urls[physical_name] = client("sqs").get_queue_url(QueueName=physical_name)["QueueUrl"]
            return self._urls[physical_name]

    def send(self, queue: str, body: str, group_id: str = "", dedup_id: str = "") -> None:
        """Send to a catalogue queue; group and deduplication ids apply to FIFO queues only (a standard
        queue refuses them)."""
        spec = QUEUES[queue]
        request: dict[str, Any] = {"QueueUrl": self.url(spec.physical_name()), "MessageBody": body}
        if spec.fifo:
            request["MessageGroupId"] = group_id
            request["MessageDeduplicationId"] = dedup_id[:128]
        client("sqs").send_message(**request)

    def dead_letter(self, queue: str, body: str, group_id: str, dedup_id: str, reason: str) -> None:
        """Move a message that can never succeed straight to the queue's DLQ, with the reason as an
        attribute: retrying a malformed message only delays the rest of its group."""
        spec = QUEUES[queue]
        request: dict[str, Any] = {
            "QueueUrl": self.url(spec.dead_letter_target()),
            "MessageBody": body,
            "MessageAttributes": {"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        }
        if spec.fifo:
            request["MessageGroupId"] = group_id or "invalid"
            request["MessageDeduplicationId"] = dedup_id[:128]
        client("sqs").send_message(**request)
