"""DynamoDB Streams -> Lambda delivery (moto records stream changes but triggers nothing).

Reads each shard in order and invokes the function with stream batches; when the function reports
`batchItemFailures`, the batch is retried from the first failed record (as Lambda does with
bisect-off, report-batch-item-failures on), and after `max_retries` the remaining records are
dead-lettered with the reason so the shard keeps moving.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from tradeflow.catalogue import TABLES, StreamSource
from tradeflow.local.lambdas import LocalLambdas
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client

log = logging.getLogger("tradeflow.local")


LOCAL_WINDOW_CAP_SECONDS = 5.0


class StreamPoller(threading.Thread):
    def __init__(
        self,
        function: str,
        source: StreamSource,
        lambdas: LocalLambdas,
        stop: threading.Event,
        interval: float = 0.05,
        max_retries: int = 3,
    ) -> None:
        super().__init__(name=f"stream-{source.table}-{function}", daemon=True)
        self.function = function
        self.source = source
        self.lambdas = lambdas
        self.stop_event = stop
        self.interval = interval
        self.max_retries = max_retries
        table = client("dynamodb").describe_table(TableName=TABLES[source.table].physical_name())["Table"]
        self.stream_arn: str = table["LatestStreamArn"]
        self.iterators: dict[str, str | None] = {}
        self.records_seen = 0
        self.idle = threading.Event()
        # Lambda's batching window (the archiver gathers a minute of bars into one batch), capped here so a
        # local run shows its effect within seconds
        self.window = min(float(source.max_batching_window_seconds), LOCAL_WINDOW_CAP_SECONDS)
        self.held: list[dict[str, Any]] = []
        self.held_since = 0.0

    def _discover(self) -> None:
        streams = client("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", [])
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=self.source.starting_position
                )["ShardIterator"]

    def run(self) -> None:
        streams = client("dynamodbstreams")
        self._discover()
        while not self.stop_event.is_set():
            got = 0
            try:
                for shard_id, iterator in list(self.iterators.items()):
                    if iterator is None:
                        continue
                    page = streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
                    self.iterators[shard_id] = page.get("NextShardIterator")
                    records = page.get("Records", [])
                    if records:
                        got += len(records)
                        self._batch(records)
                self._flush_due()
            except Exception as exc:
                if self.stop_event.is_set():
                    break
                log.warning("reading stream for %s failed: %s", self.function, exc)
            if not got and not self.held:
                self.idle.set()
                self.stop_event.wait(self.interval)
            else:
                self.idle.clear()
                if not got:
                    self.stop_event.wait(self.interval)
        if self.held:  # records gathered for a batch are delivered, never dropped, when the cloud stops
            self.deliver(self.held)
            self.held = []

    def _batch(self, records: list[dict[str, Any]]) -> None:
        if self.window <= 0:
            self.deliver(records)
            return
        if not self.held:
            self.held_since = time.monotonic()
        self.held.extend(records)

    def _flush_due(self) -> None:
        if self.held and (
            len(self.held) >= self.source.batch_size or time.monotonic() - self.held_since >= self.window
        ):
            batch, self.held = self.held, []
            self.deliver(batch)

    def deliver(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            record["eventSourceARN"] = self.stream_arn
            record.setdefault("eventSource", "aws:dynamodb")
            created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
            if created is not None and not isinstance(created, int | float):
                record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
        pending = records
        reason = ""
        for _ in range(self.max_retries + 1):
            try:
                result = self.lambdas.invoke(self.function, {"Records": pending}) or {}
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            if not failures:
                self.records_seen += len(records)
                return
            sequence = [r["dynamodb"].get("SequenceNumber") for r in pending]
            first = (
                min(sequence.index(f) for f in failures if f in sequence) if any(f in sequence for f in failures) else 0
            )
            pending = pending[first:]
            reason = f"{len(failures)} record(s) reported as failed"
        for record in pending:
            SqsQueues().dead_letter(
                "dead_events",
                json.dumps(record, default=str),
                self.function,
                record.get("eventID", "unknown"),
                f"{self.function}: {reason}",
            )
        log.error("%s: dead-lettered %d stream record(s): %s", self.function, len(pending), reason)
        self.records_seen += len(records)
