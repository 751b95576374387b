"""CDK assertions for the storage, pipeline and streamer constructs (stage dev, placeholder layers).

The app is synthesised once per test process (`synth.synthesised`); the template is checked against the
resource catalogue: tables (keys, indexes, TTL, streams, PITR, the CMK), queues (FIFO with explicit
deduplication ids, redrive to their DLQs), event source mappings (partial batch responses), the
scheduler's role and the platform schedules, least-privilege policies, and the streamer's service.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from synth import STAGE, template_json

from tradeflow.catalogue import FUNCTIONS, QUEUES, SCHEDULE_GROUPS, SERVICES, TABLES, Queue, Table
from tradeflow.scheduling.platform import platform_schedule_input

pytestmark = pytest.mark.xdist_group("infra")

WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:*",
}
SECRET_PREFIX = f"secret:tradeflow-{STAGE}/*"


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_json(template_json())


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template_json()["Resources"].items() if r["Type"] == kind}


def _by_name(kind: str, name_property: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """physical name -> (logical id, properties)."""
    return {
        str(r["Properties"][name_property]): (lid, r["Properties"])
        for lid, r in _resources(kind).items()
        if name_property in r.get("Properties", {})
    }


def _table_id(name: str) -> str:
    return _by_name("AWS::DynamoDB::Table", "TableName")[TABLES[name].physical_name(STAGE)][0]


def _function_id(name: str) -> str:
    return _by_name("AWS::Lambda::Function", "FunctionName")[FUNCTIONS[name].physical_name(STAGE)][0]


def _role_of(function_name: str) -> str:
    props = template_json()["Resources"][_function_id(function_name)]["Properties"]
    return str(props["Role"]["Fn::GetAtt"][0])


def _statements(role_id: str) -> list[dict[str, Any]]:
    """Every Allow statement of the inline and attached policies of a role."""
    found: list[dict[str, Any]] = []
    for policy in _resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    for policy in template_json()["Resources"][role_id]["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    return [s for s in found if s.get("Effect") == "Allow"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _mentions(resource: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(resource)


def _literal(resource: Any) -> str:
    """A resource ARN flattened to text (joins concatenated, references as their logical ids)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Join" in resource:
        sep, parts = resource["Fn::Join"]
        return str(sep).join(_literal(p) for p in parts)
    return json.dumps(resource)


# -- storage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(TABLES.values()), ids=list(TABLES))
def test_tables_follow_the_catalogue_on_demand_with_pitr_and_the_cmk(spec: Table) -> None:
    tables = _by_name("AWS::DynamoDB::Table", "TableName")
    assert spec.physical_name(STAGE) in tables
    _, table = tables[spec.physical_name(STAGE)]
    assert {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]} == {
        "HASH": spec.partition_key,
        **({"RANGE": spec.sort_key} if spec.sort_key else {}),
    }
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == dict.fromkeys(
        spec.key_attributes, "S"
    )
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {i.name for i in spec.indexes}
    for index in spec.indexes:
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
        assert {k["KeyType"]: k["AttributeName"] for k in indexes[index.name]["KeySchema"]} == {
            "HASH": index.partition_key,
            **({"RANGE": index.sort_key} if index.sort_key else {}),
        }
    if spec.ttl_attribute:
        assert table["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in table
    assert table.get("StreamSpecification", {}).get("StreamViewType") == spec.stream
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = table["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert template_json()["Resources"][key_id]["Type"] == "AWS::KMS::Key"


def test_the_customer_managed_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_history_bucket_is_encrypted_versioned_private_tls_only_logged_and_tiered(template: Template) -> None:
    buckets = _resources("AWS::S3::Bucket")
    history = [
        (lid, r["Properties"]) for lid, r in buckets.items() if "LoggingConfiguration" in r.get("Properties", {})
    ]
    assert len(history) == 1
    lid, bucket = history[0]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # the tiering rule (the History construct adds one expiring Athena's query results, tests/infra/test_history.py)
    (lifecycle,) = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "tier-history"]
    assert {t["StorageClass"] for t in lifecycle["Transitions"]} == {"STANDARD_IA", "GLACIER_IR"}
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    # TLS only: the bucket policy denies requests without aws:SecureTransport
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": lid},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_timestream_is_off_by_default() -> None:
    assert not [r for r in template_json()["Resources"].values() if r["Type"].startswith("AWS::Timestream::")]


def test_timestream_behind_the_context_flag_uses_the_cmk() -> None:
    from tradeflow_infra.config import stage_config
    from tradeflow_infra.storage import Storage

    app = cdk.App(context={"stage": STAGE, "timestream": "true"})
    stack = cdk.Stack(app, "timestream", env=cdk.Environment(account="123456789012", region="us-east-1"))
    Storage(stack, "Storage", config=stage_config(app.node))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Timestream::Database", 1)
    template.has_resource_properties("AWS::Timestream::Database", {"KmsKeyId": Match.any_value()})
    template.resource_count_is("AWS::Timestream::Table", 1)


# -- queues ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(QUEUES.values()), ids=list(QUEUES))
def test_queues_follow_the_catalogue_with_redrive_to_their_dlq(spec: Queue) -> None:
    queues = _by_name("AWS::SQS::Queue", "QueueName")
    _, queue = queues[spec.physical_name(STAGE)]
    if spec.fifo:
        assert queue["FifoQueue"] is True
        assert queue["ContentBasedDeduplication"] is False  # explicit deduplication ids only
    else:
        assert "FifoQueue" not in queue
    assert queue["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert queue["MessageRetentionPeriod"] == spec.retention_seconds
    assert queue["SqsManagedSseEnabled"] is True
    if spec.has_dlq:
        dlq_id, dlq = queues[spec.dlq_physical_name(STAGE)]
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": spec.max_receive_count,
        }
        assert dlq["MessageRetentionPeriod"] == spec.dlq_retention_seconds
        assert dlq.get("FifoQueue") is (True if spec.fifo else None)
    else:
        assert "RedrivePolicy" not in queue


def test_every_queue_refuses_requests_without_tls(template: Template) -> None:
    policies = _resources("AWS::SQS::QueuePolicy").values()
    covered: set[str] = set()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            covered.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert set(_resources("AWS::SQS::Queue")) <= covered


# -- functions and their triggers ------------------------------------------------------------------

PIPELINE_FUNCTIONS = ["strategy", "risk", "execution", "paper_exchange", "backtest_worker", "reconcile"]


@pytest.mark.parametrize("name", PIPELINE_FUNCTIONS)
def test_pipeline_functions_are_built_from_the_catalogue(name: str) -> None:
    spec = FUNCTIONS[name]
    props = template_json()["Resources"][_function_id(name)]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["x86_64"]
    assert props["Handler"] == "handler.handler"
    assert props["Timeout"] == spec.timeout_seconds
    assert props["MemorySize"] == spec.memory_mb
    assert props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    assert env["TRADEFLOW_STAGE"] == STAGE
    assert env["POWERTOOLS_SERVICE_NAME"] == f"tradeflow-{name}"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "tradeflow"


def test_every_sqs_event_source_reports_batch_item_failures() -> None:
    queue_ids = set(_resources("AWS::SQS::Queue"))
    mappings = [
        m["Properties"]
        for m in _resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"].get("Fn::GetAtt", [""])[0] in queue_ids
    ]
    expected = {n for n, f in FUNCTIONS.items() if f.queue_source}
    assert len(mappings) == len(expected)
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for name in expected:
        source = FUNCTIONS[name].queue_source
        assert source is not None
        queue_id = _by_name("AWS::SQS::Queue", "QueueName")[QUEUES[source.queue].physical_name(STAGE)][0]
        (mapping,) = [
            m
            for m in mappings
            if m["FunctionName"] == {"Ref": _function_id(name)} and m["EventSourceArn"]["Fn::GetAtt"][0] == queue_id
        ]
        assert mapping["BatchSize"] == source.batch_size


def test_execution_concurrency_protects_the_brokers() -> None:
    props = template_json()["Resources"][_function_id("execution")]["Properties"]
    limit = props["ReservedConcurrentExecutions"]
    assert limit >= 1
    (mapping,) = [
        m["Properties"]
        for m in _resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": _function_id("execution")}
    ]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] <= max(2, limit)


def test_paper_exchange_consumes_its_streams_with_bisect_and_dead_events() -> None:
    dead_events = _by_name("AWS::SQS::Queue", "QueueName")[QUEUES["dead_events"].physical_name(STAGE)][0]
    mappings = [
        m["Properties"]
        for m in _resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": _function_id("paper_exchange")}
    ]
    sources = FUNCTIONS["paper_exchange"].stream_sources
    assert len(mappings) == len(sources)
    for source in sources:
        (mapping,) = [
            m for m in mappings if m["EventSourceArn"] == {"Fn::GetAtt": [_table_id(source.table), "StreamArn"]}
        ]
        assert mapping["StartingPosition"] == source.starting_position
        assert mapping["BatchSize"] == source.batch_size
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [dead_events, "Arn"]}


# -- least privilege -------------------------------------------------------------------------------


def _writes(role_id: str, table: str) -> set[str]:
    table_id = _table_id(table)
    actions: set[str] = set()
    for statement in _statements(role_id):
        if any(_mentions(r, table_id) or r == "*" for r in _listed(statement["Resource"])):
            actions.update(a for a in _listed(statement["Action"]) if a in WRITE_ACTIONS)
    return actions


def test_the_strategy_function_cannot_write_orders() -> None:
    role = _role_of("strategy")
    assert _writes(role, "orders") == set()
    assert "dynamodb:PutItem" in _writes(role, "evaluations")  # it does write what the catalogue says


@pytest.mark.parametrize("name", PIPELINE_FUNCTIONS)
def test_functions_write_only_the_catalogue_tables(name: str) -> None:
    role = _role_of(name)
    written = {table for table in TABLES if _writes(role, table)}
    assert written == set(FUNCTIONS[name].writes)


def _secret_actions(role_id: str) -> set[str]:
    actions: set[str] = set()
    for statement in _statements(role_id):
        for action in _listed(statement["Action"]):
            if action.startswith("secretsmanager:") or action == "*":
                resources = [_literal(r) for r in _listed(statement["Resource"])]
                assert all(r.endswith(SECRET_PREFIX) for r in resources), resources
                actions.add(action)
    return actions


def test_the_api_manages_broker_secrets_but_cannot_read_their_values() -> None:
    actions = _secret_actions(_role_of("api"))
    assert "secretsmanager:CreateSecret" in actions
    assert "secretsmanager:GetSecretValue" not in actions


def test_only_the_functions_that_trade_read_broker_secrets() -> None:
    for name in PIPELINE_FUNCTIONS:
        readable = "secretsmanager:GetSecretValue" in _secret_actions(_role_of(name))
        assert readable is bool(FUNCTIONS[name].reads_secrets), name


def test_the_api_may_pass_only_the_scheduler_role_and_manage_only_deployment_schedules() -> None:
    statements = _statements(_role_of("api"))
    (passrole,) = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    (role_id,) = [lid for lid in _resources("AWS::IAM::Role") if _mentions(passrole["Resource"], lid)]
    assert "SchedulerRole" in role_id
    (schedules,) = [s for s in statements if "scheduler:CreateSchedule" in _listed(s["Action"])]
    assert _literal(schedules["Resource"]).endswith(f"schedule/{SCHEDULE_GROUPS['deployments'].physical_name(STAGE)}/*")
    env = template_json()["Resources"][_function_id("api")]["Properties"]["Environment"]["Variables"]
    assert env["TRADEFLOW_STRATEGY_FUNCTION_ARN"] == {"Fn::GetAtt": [_function_id("strategy"), "Arn"]}
    assert env["TRADEFLOW_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": [role_id, "Arn"]}


# -- schedules -------------------------------------------------------------------------------------


def test_schedule_groups_exist(template: Template) -> None:
    for group in SCHEDULE_GROUPS.values():
        template.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": group.physical_name(STAGE)})


def test_the_scheduler_role_invokes_only_the_strategy_and_rate_functions() -> None:
    (role_id,) = [lid for lid in _resources("AWS::IAM::Role") if "SchedulerRole" in lid]
    trust = template_json()["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    invoked = set()
    for statement in _statements(role_id):
        if "lambda:InvokeFunction" in _listed(statement["Action"]):
            for resource in _listed(statement["Resource"]):
                invoked.add(resource["Fn::GetAtt"][0])
    expected = {_function_id(n) for n, f in FUNCTIONS.items() if f.scheduled or f.rate}
    assert invoked == expected


def test_the_platform_schedule_invokes_reconcile_with_the_scheduled_time(template: Template) -> None:
    for name, spec in FUNCTIONS.items():
        if not spec.rate:
            continue
        template.has_resource_properties(
            "AWS::Scheduler::Schedule",
            {
                "Name": name,
                "GroupName": SCHEDULE_GROUPS["platform"].physical_name(STAGE),
                "ScheduleExpression": spec.rate,
                "State": "ENABLED",
                "Target": Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [_function_id(name), "Arn"]},
                        "Input": platform_schedule_input(name),
                    }
                ),
            },
        )
    assert json.loads(platform_schedule_input("reconcile")) == {
        "source": "tradeflow.platform",
        "time": "<aws.scheduler.scheduled-time>",
        "function": "reconcile",
    }


# -- streamer --------------------------------------------------------------------------------------


def test_the_streamer_runs_one_fargate_task_without_inbound_access(template: Template) -> None:
    name = SERVICES["streamer"].physical_name(STAGE)
    template.has_resource_properties(
        "AWS::ECS::Service", {"ServiceName": name, "DesiredCount": 1, "LaunchType": "FARGATE"}
    )
    template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": Match.array_with([{"Name": "containerInsights", "Value": "enabled"}])},
    )
    (service,) = [s["Properties"] for s in _resources("AWS::ECS::Service").values()]
    (group_ref,) = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    group = template_json()["Resources"][group_ref["Fn::GetAtt"][0]]["Properties"]
    assert not group.get("SecurityGroupIngress")
    assert not _resources("AWS::EC2::SecurityGroupIngress")
    assert _resources("AWS::EC2::FlowLog")


def test_the_streamer_task_logs_stops_gracefully_and_reads_broker_secrets() -> None:
    (_, task) = next(iter(_resources("AWS::ECS::TaskDefinition").items()))
    props = task["Properties"]
    (container,) = props["ContainerDefinitions"]
    assert container["StopTimeout"] >= 15
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["TRADEFLOW_STAGE"] == STAGE
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "tradeflow"
    assert any(k.startswith("TRADEFLOW_STREAMER_") for k in env)
    assert props["Cpu"] == str(SERVICES["streamer"].cpu)
    assert props["Memory"] == str(SERVICES["streamer"].memory_mb)
    task_role = props["TaskRoleArn"]["Fn::GetAtt"][0]
    assert "secretsmanager:GetSecretValue" in _secret_actions(task_role)
    assert _writes(task_role, "orders") == set()
    assert {t for t in TABLES if _writes(task_role, t)} == set(SERVICES["streamer"].writes)
