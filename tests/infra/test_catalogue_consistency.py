"""The template describes exactly what the code expects: every table, queue and function of the
resource catalogue exists in the synthesised stack under the same physical name, with the same keys,
indexes, TTL, streams, FIFO settings, redrive and limits (design rule 3: one definition, many uses)."""

from __future__ import annotations

from typing import Any

import pytest
from synth import STAGE, resources, template_json

from tradeflow.catalogue import FUNCTIONS, QUEUES, TABLES, Queue, Table, enabled_functions

pytestmark = pytest.mark.xdist_group("infra")


def _tables() -> dict[str, dict[str, Any]]:
    found = resources("AWS::DynamoDB::Table") + resources("AWS::DynamoDB::GlobalTable")
    return {str(t.get("TableName")): t for t in found}


def _keys(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


@pytest.mark.parametrize("spec", list(TABLES.values()), ids=list(TABLES))
def test_every_catalogue_table_exists_with_its_keys_indexes_ttl_and_stream(spec: Table) -> None:
    table = _tables().get(spec.physical_name(STAGE))
    assert table is not None, f"{spec.physical_name(STAGE)} is not in the template"
    assert _keys(table["KeySchema"]) == {
        "HASH": spec.partition_key,
        **({"RANGE": spec.sort_key} if spec.sort_key else {}),
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == dict.fromkeys(spec.key_attributes, "S")
    indexes = {i["IndexName"]: _keys(i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])}
    assert indexes == {
        i.name: {"HASH": i.partition_key, **({"RANGE": i.sort_key} if i.sort_key else {})} for i in spec.indexes
    }
    ttl = table.get("TimeToLiveSpecification")
    if spec.ttl_attribute:
        assert ttl == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert not ttl or not ttl.get("Enabled")
    stream = table.get("StreamSpecification", {}).get("StreamViewType")
    assert stream == spec.stream
    pitr = table.get("PointInTimeRecoverySpecification") or table.get("Replicas", [{}])[0].get(
        "PointInTimeRecoverySpecification"
    )
    assert pitr and pitr.get("PointInTimeRecoveryEnabled") is True
    sse = table.get("SSESpecification", {})
    assert sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS"  # the customer-managed key


def test_no_table_exists_that_the_catalogue_does_not_declare() -> None:
    declared = {t.physical_name(STAGE) for t in TABLES.values()}
    assert set(_tables()) <= declared | {n for n in _tables() if "timestream" in n.lower()}


def _queues() -> dict[str, dict[str, Any]]:
    return {str(q.get("QueueName")): q for q in resources("AWS::SQS::Queue")}


@pytest.mark.parametrize("spec", list(QUEUES.values()), ids=list(QUEUES))
def test_every_catalogue_queue_exists_with_its_fifo_settings_and_redrive(spec: Queue) -> None:
    queues = _queues()
    queue = queues.get(spec.physical_name(STAGE))
    assert queue is not None, f"{spec.physical_name(STAGE)} is not in the template"
    assert bool(queue.get("FifoQueue", False)) == spec.fifo
    if spec.fifo:  # deduplication by our explicit ids (signal id, client order id), never by content
        assert queue.get("ContentBasedDeduplication") in (False, None)
    assert queue.get("VisibilityTimeout") == spec.visibility_timeout_seconds
    assert queue.get("MessageRetentionPeriod") == spec.retention_seconds
    redrive = queue.get("RedrivePolicy")
    if spec.has_dlq:
        assert redrive is not None and redrive["maxReceiveCount"] == spec.max_receive_count
        dlq = queues.get(spec.dlq_physical_name(STAGE))
        assert dlq is not None and dlq.get("MessageRetentionPeriod") == spec.dlq_retention_seconds
        assert bool(dlq.get("FifoQueue", False)) == spec.fifo
    else:
        assert redrive is None


def test_every_catalogue_function_exists_with_its_limits_and_runtime() -> None:
    functions = {str(f.get("FunctionName")): f for f in resources("AWS::Lambda::Function")}
    # an optional function (with a context flag) exists only with its flag on: none is on by default
    for spec in FUNCTIONS.values():
        if spec.context_flag:
            assert spec.physical_name(STAGE) not in functions, f"{spec.name} is built without -c {spec.context_flag}"
    for name, spec in enabled_functions().items():
        function = functions.get(spec.physical_name(STAGE))
        assert function is not None, f"function {name} ({spec.physical_name(STAGE)}) is not in the template"
        assert function["Timeout"] == spec.timeout_seconds
        assert function["MemorySize"] == spec.memory_mb
        assert function["Runtime"] == "python3.12"
        assert function["Handler"] == spec.handler
        assert function.get("TracingConfig", {}).get("Mode") == "Active"
        env = function.get("Environment", {}).get("Variables", {})
        assert env.get("TRADEFLOW_STAGE") == STAGE


def test_the_stack_synthesises_with_every_catalogue_schedule_group() -> None:
    groups = {str(g.get("Name")) for g in resources("AWS::Scheduler::ScheduleGroup")}
    assert {f"tradeflow-{STAGE}-deployments", f"tradeflow-{STAGE}-platform"} <= groups
    assert template_json()["Resources"]
