"""The function factory: one Lambda function per catalogue entry, built the same way for every concern.

`make_function` reads `tradeflow.catalogue.FUNCTIONS[name]` and derives everything from it: the physical
name, handler, timeout and memory, the environment the handlers read, and least-privilege IAM (table
reads and writes, queues sent to, secrets read or managed, schedules managed). The pipeline builds its
functions with it and exposes `Pipeline.make` so the API and realtime constructs build theirs identically.
`grant_catalogue_access` is the same derivation for any grantee (the streamer's task role uses it).

Permissions a construct adds for its own integration (e.g. `execute-api:ManageConnections` for
`posts_to_connections`) go through the returned function's `add_to_role_policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aws_cdk import Acknowledgment, ArnFormat, CfnResource, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from tradeflow.catalogue import BUCKETS, FUNCTIONS, PREFIX, SCHEDULE_GROUPS, SECRETS, TABLES, TIMESTREAM
from tradeflow.catalogue import Function as FunctionSpec
from tradeflow_infra.config import StageConfig
from tradeflow_infra.storage import Storage

# python3.12 on x86_64: the layers are pip-installed for cp312 manylinux2014_x86_64 wheels (packaging.py);
# runtime, architecture and layers move together or the compiled wheels stop importing.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
METRICS_NAMESPACE = "tradeflow"

# Data-plane actions only: the handlers use the low-level client (get/put/update/delete, query, scan,
# batch and transactional writes, which DynamoDB authorises per item action) and never describe tables.
TABLE_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
# The tables are encrypted with the stage's CMK: readers decrypt, writers also generate data keys.
KEY_READ_ACTIONS = ("kms:Decrypt",)
KEY_WRITE_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# Create, rotate (a new version), delete and undelete credentials; never read a value back.
SECRET_MANAGE_ACTIONS = (
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:TagResource",
)
# Objects are put whole (single-part puts) into the SSE-KMS history bucket: S3 asks the stage key for a data key.
OBJECT_WRITE_ACTIONS = ("s3:PutObject",)
OBJECT_KEY_ACTIONS = ("kms:GenerateDataKey",)
TIMESTREAM_WRITE_ACTIONS = ("timestream:WriteRecords",)
# The SDK discovers the regional write endpoint before writing; the action takes no resource.
TIMESTREAM_ENDPOINT_ACTIONS = ("timestream:DescribeEndpoints",)
SCHEDULE_ACTIONS = (
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
)


class LayerSource(Protocol):
    """What the packaging construct (`packaging.LayerSet`) provides for each catalogue function."""

    def code_for(self, name: str) -> lambda_.Code: ...

    def layers_for(self, name: str) -> list[lambda_.ILayerVersion]: ...


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag AwsSolutions finding on `scope` and its children: `rule` is the rule id
    (`IAM5`) or a granular finding (`IAM5[Resource::*]`)."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason))


def nag_resource(scope: IConstruct, value: str) -> str:
    """How cdk-nag prints a (possibly tokenised) ARN in a granular finding: `<Logical.Arn>` for GetAtt,
    `<Ref>` for Ref, joins concatenated — so an acknowledgment names exactly one resource."""

    def visit(node: Any) -> str:
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict) and "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(visit(item) for item in items)
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{visit(resource)}.{visit(attribute)}>"
        if isinstance(node, dict) and "Ref" in node:
            return f"<{visit(node['Ref'])}>"
        raise ValueError(f"cannot flatten {node!r}")

    return visit(Stack.of(scope).resolve(value))


def secrets_arn(scope: IConstruct, config: StageConfig, space: str) -> str:
    """Every secret of a catalogue secret space in this stage: `…:secret:tradeflow-<stage>/*` (the secret
    names are `tradeflow-<stage>/<tenant>/<account>`; Secrets Manager appends a random suffix)."""
    return Stack.of(scope).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=SECRETS[space].prefix(config.stage) + "*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def schedules_arn(scope: IConstruct, config: StageConfig, group: str) -> str:
    """Every schedule of one catalogue schedule group in this stage."""
    return Stack.of(scope).format_arn(
        service="scheduler",
        resource="schedule",
        resource_name=f"{SCHEDULE_GROUPS[group].physical_name(config.stage)}/*",
    )


def grant_catalogue_access(
    grantee: iam.IGrantable,
    *,
    config: StageConfig,
    storage: Storage,
    queues: Mapping[str, sqs.Queue],
    reads: Iterable[str] = (),
    writes: Iterable[str] = (),
    sends_to: Iterable[str] = (),
    reads_secrets: Iterable[str] = (),
    manages_secrets: Iterable[str] = (),
) -> list[str]:
    """Grant exactly what a catalogue entry declares. Returns the IAM5 findings the grants carry (the
    secret prefixes), for the caller to acknowledge on the grantee's role."""
    reads, writes = tuple(reads), tuple(writes)
    statements: list[iam.PolicyStatement] = []
    if reads:
        resources: list[str] = []
        for name in reads:
            table = storage.table(name)
            resources.append(table.table_arn)
            # each index by name (no `/index/*` wildcard): Query on a GSI is authorised on the index ARN
            resources.extend(f"{table.table_arn}/index/{index}" for index in _index_names(name))
        statements.append(iam.PolicyStatement(actions=list(TABLE_READ_ACTIONS), resources=resources))
    if writes:
        resources = [storage.table(name).table_arn for name in writes]
        statements.append(iam.PolicyStatement(actions=list(TABLE_WRITE_ACTIONS), resources=resources))
    if reads or writes:
        actions = KEY_WRITE_ACTIONS if writes else KEY_READ_ACTIONS
        statements.append(iam.PolicyStatement(actions=list(actions), resources=[storage.key.key_arn]))
    for statement in statements:
        grantee.grant_principal.add_to_principal_policy(statement)
    for name in sends_to:
        queue = queues[name]
        queue.grant_send_messages(grantee)
        # handlers dead-letter poison messages themselves (with the reason), so they send to the DLQ too
        if queue.dead_letter_queue is not None:
            queue.dead_letter_queue.queue.grant_send_messages(grantee)
    findings: list[str] = []
    scope = storage
    for space in reads_secrets:
        arn = secrets_arn(scope, config, space)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SECRET_READ_ACTIONS), resources=[arn])
        )
        findings.append(f"Resource::{nag_resource(scope, arn)}")
    for space in manages_secrets:
        arn = secrets_arn(scope, config, space)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SECRET_MANAGE_ACTIONS), resources=[arn])
        )
        findings.append(f"Resource::{nag_resource(scope, arn)}")
    return sorted(set(findings))


def grant_history_writes(
    function: lambda_.Function, spec: FunctionSpec, *, config: StageConfig, storage: Storage
) -> dict[str, str]:
    """The S3 objects and Timestream table a catalogue function writes (`writes_objects`, `timestream`):
    grants exactly those and returns the environment naming them (the deployed bucket's name, the
    Timestream database and table)."""
    env: dict[str, str] = {}
    role = function.role
    assert role is not None
    for target in spec.writes_objects:
        bucket = storage.bucket(target.bucket)
        env[BUCKETS[target.bucket].env_var] = bucket.bucket_name
        objects = bucket.arn_for_objects(f"{target.prefix}*")
        function.add_to_role_policy(iam.PolicyStatement(actions=list(OBJECT_WRITE_ACTIONS), resources=[objects]))
        acknowledge(
            role,
            f"IAM5[Resource::{nag_resource(function, objects)}]",
            f"The {spec.name} function writes one object per partition and batch under {target.prefix} of the "
            f"{target.bucket} bucket (Hive-partitioned keys made at run time): put only, that prefix only.",
        )
    if spec.writes_objects:
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(OBJECT_KEY_ACTIONS), resources=[storage.key.key_arn])
        )
    if spec.timestream:
        if storage.timestream_table is None or storage.timestream_database is None:
            raise ValueError(f"{spec.name} writes to Timestream: synthesise with -c timestream=true")
        env[TIMESTREAM.database_env_var] = TIMESTREAM.database_name(config.stage)
        env[TIMESTREAM.table_env_var] = TIMESTREAM.table
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(TIMESTREAM_WRITE_ACTIONS), resources=[storage.timestream_table.attr_arn])
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=list(TIMESTREAM_ENDPOINT_ACTIONS), resources=["*"]))
    return env


def _index_names(table: str) -> list[str]:
    return [index.name for index in TABLES[table].indexes]


def _depend_on_policy_only(function: lambda_.Function, role: iam.Role) -> None:
    """CDK makes the function depend on its role and the role's policy; the role is already a `GetAtt`
    dependency (cfn-lint W3005), so keep only the policy: the function must not run before its grants."""
    policy = role.node.try_find_child("DefaultPolicy")
    cfn_function = function.node.default_child
    if policy is None or not isinstance(cfn_function, CfnResource):
        return
    cfn_policy = policy.node.default_child
    assert isinstance(cfn_policy, CfnResource)
    cfn_function.add_override("DependsOn", [cfn_policy.logical_id])


def base_environment(config: StageConfig, name: str) -> dict[str, str]:
    """What every tradeflow process reads: the stage (the catalogue's physical names follow it) and
    Powertools' service name and metrics namespace."""
    return {
        "TRADEFLOW_STAGE": config.stage,
        "POWERTOOLS_SERVICE_NAME": f"{PREFIX}-{name}",
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }


def make_function(
    scope: Construct,
    name: str,
    *,
    config: StageConfig,
    storage: Storage,
    layers: LayerSource,
    queues: Mapping[str, sqs.Queue],
    environment: Mapping[str, str] | None = None,
    scheduler_role: iam.IRole | None = None,
    strategy_function: lambda_.IFunction | None = None,
    reserved_concurrency: int | None = None,
) -> lambda_.Function:
    """Build the catalogue function `name` in `scope` (construct id = its catalogue name).

    `environment` is added to the base environment (e.g. the WebSocket URLs, the Cognito settings).
    A function that `manages_schedules` needs `scheduler_role` and `strategy_function`: it creates the
    deployments' schedules targeting that function with that role (`TRADEFLOW_STRATEGY_FUNCTION_ARN`,
    `TRADEFLOW_SCHEDULER_ROLE_ARN`) and may pass only that role.
    """
    spec = FUNCTIONS[name]
    physical = spec.physical_name(config.stage)
    env = {**base_environment(config, name), **(environment or {})}
    if spec.manages_schedules:
        if scheduler_role is None or strategy_function is None:
            raise ValueError(f"{name} manages schedules: pass scheduler_role and strategy_function")
        env["TRADEFLOW_STRATEGY_FUNCTION_ARN"] = strategy_function.function_arn
        env["TRADEFLOW_SCHEDULER_ROLE_ARN"] = scheduler_role.role_arn

    log_group = logs.LogGroup(
        scope,
        f"{name}Logs",
        log_group_name=f"/aws/lambda/{physical}",
        retention=config.log_retention,
        removal_policy=config.removal_policy,
    )
    # An own role instead of the AWSLambdaBasicExecutionRole managed policy: logs to this group only.
    role = iam.Role(
        scope,
        f"{name}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"tradeflow {config.stage} {name} function: {spec.purpose}"[:1000],
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        name,
        function_name=physical,
        description=spec.purpose[:256],
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=spec.handler,
        code=layers.code_for(name),
        layers=layers.layers_for(name),
        timeout=Duration.seconds(spec.timeout_seconds),
        memory_size=spec.memory_mb,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,  # Powertools logs JSON already; platform lines match
        role=role,
        environment=env,
        reserved_concurrent_executions=reserved_concurrency,
    )
    findings = grant_catalogue_access(
        role,
        config=config,
        storage=storage,
        queues=queues,
        reads=spec.reads,
        writes=spec.writes,
        sends_to=spec.sends_to,
        reads_secrets=spec.reads_secrets,
        manages_secrets=spec.manages_secrets,
    )
    for finding in findings:
        acknowledge(
            role,
            f"IAM5[{finding}]",
            f"Broker credentials are one secret per tenant account (tradeflow-{config.stage}/<tenant>/<account>), "
            "created at run time; the grant is limited to this stage's prefix and the catalogue's actions.",
        )
    if spec.manages_schedules:
        assert scheduler_role is not None
        schedules = schedules_arn(scope, config, "deployments")
        function.add_to_role_policy(iam.PolicyStatement(actions=list(SCHEDULE_ACTIONS), resources=[schedules]))
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        acknowledge(
            role,
            f"IAM5[Resource::{nag_resource(scope, schedules)}]",
            "One schedule per deployed (strategy, symbol), created by the API at run time: the grant covers "
            "only the stage's deployments schedule group.",
        )
    for variable, value in grant_history_writes(function, spec, config=config, storage=storage).items():
        function.add_environment(variable, value)
    acknowledge(
        role,
        "IAM5[Resource::*]",
        "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing)"
        + (" and DynamoDB ListStreams (its stream event sources)" if spec.stream_sources else "")
        + (" and Timestream DescribeEndpoints (endpoint discovery before each write)" if spec.timestream else "")
        + " support no resource-level permissions.",
    )
    _depend_on_policy_only(function, role)
    acknowledge(
        function,
        "L1",
        "python3.12 is pinned on purpose: the layers are pip-built for cp312 manylinux2014_x86_64 wheels, "
        "so the runtime moves only together with the layer definitions in layers/.",
    )
    return function
