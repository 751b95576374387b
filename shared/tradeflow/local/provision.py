"""Create every catalogue resource in the (local) AWS: tables, queues with their DLQs, buckets, schedule
groups, and with the `timestream` flag the optional Timestream market-data table."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from typing import Any

from tradeflow.catalogue import BUCKETS, QUEUES, SCHEDULE_GROUPS, TABLES, TIMESTREAM, Bucket, Queue, Table
from tradeflow.runtime.aws import client


def _create_table(spec: Table) -> None:
    ddb = client("dynamodb")
    attributes = [{"AttributeName": name, "AttributeType": "S"} for name in spec.key_attributes]
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": spec.physical_name(),
        "AttributeDefinitions": attributes,
        "KeySchema": keys,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    *([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    if spec.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream}
    try:
        ddb.create_table(**request)
    except ddb.exceptions.ResourceInUseException:
        return
    if spec.ttl_attribute:
        ddb.update_time_to_live(
            TableName=spec.physical_name(),
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def _queue_attributes(spec: Queue, retention: int) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(spec.visibility_timeout_seconds),
        "MessageRetentionPeriod": str(retention),
    }
    if spec.fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = "false"
    return attributes


def _create_queue(spec: Queue) -> None:
    sqs = client("sqs")
    attributes = _queue_attributes(spec, spec.retention_seconds)
    if spec.has_dlq:
        dlq_url = sqs.create_queue(
            QueueName=spec.dlq_physical_name(), Attributes=_queue_attributes(spec, spec.dlq_retention_seconds)
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
        )
    sqs.create_queue(QueueName=spec.physical_name(), Attributes=attributes)


def _create_schedule_group(name: str) -> None:
    scheduler = client("scheduler")
    try:
        scheduler.create_schedule_group(Name=name)
    except scheduler.exceptions.ConflictException:
        return


def _create_bucket(spec: Bucket) -> None:
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=spec.actual_name())  # us-east-1 (the local region) takes no location
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        return


def _create_timestream_table() -> None:
    writer = client("timestream-write")
    database = TIMESTREAM.database_name()
    with contextlib.suppress(writer.exceptions.ConflictException):
        writer.create_database(DatabaseName=database)
    try:
        writer.create_table(
            DatabaseName=database,
            TableName=TIMESTREAM.table,
            RetentionProperties={
                "MemoryStoreRetentionPeriodInHours": TIMESTREAM.memory_store_hours,
                "MagneticStoreRetentionPeriodInDays": 365,
            },
        )
    except writer.exceptions.ConflictException:
        return


def provision(flags: Collection[str] = ()) -> None:
    """Idempotent: existing resources are left as they are. `flags` (e.g. `{"timestream"}`) adds the
    optional resources, as the CDK context flags do."""
    for table in TABLES.values():
        _create_table(table)
    for queue in QUEUES.values():
        _create_queue(queue)
    for bucket in BUCKETS.values():
        _create_bucket(bucket)
    for group in SCHEDULE_GROUPS.values():
        _create_schedule_group(group.physical_name())
    if "timestream" in flags:
        _create_timestream_table()
