"""The trading pipeline: the catalogue's SQS queues with their dead-letter queues, the functions that are
not the API's or the WebSocket API's (strategy, risk, execution, paper_exchange, backtest_worker,
reconcile) with their SQS and DynamoDB-stream event sources, the EventBridge Scheduler schedule groups,
the role schedules invoke functions with, and the platform's own fixed schedules.

Everything is iterated from `tradeflow.catalogue` (QUEUES, FUNCTIONS, SCHEDULE_GROUPS): a queue, trigger
or schedule added to the catalogue appears here without a second list.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from tradeflow.catalogue import FUNCTIONS, QUEUES, SCHEDULE_GROUPS, enabled_functions
from tradeflow.catalogue import Function as FunctionSpec
from tradeflow.catalogue import Queue as QueueSpec
from tradeflow.scheduling.platform import platform_schedule_input
from tradeflow_infra.config import StageConfig
from tradeflow_infra.functions import LayerSource, acknowledge, make_function
from tradeflow_infra.storage import Storage

# Built by the API and realtime constructs (through `Pipeline.make`), next to their API Gateway resources.
OWNED_ELSEWHERE = frozenset({"api", "broadcaster"})
# Where unprocessable events of non-queue triggers (stream batches, platform schedules) end up.
DEAD_EVENTS = "dead_events"
# A stream batch is retried this often (halved on each error) before it goes to dead_events.
STREAM_RETRY_ATTEMPTS = 5
STREAM_MAX_RECORD_AGE = Duration.hours(6)


def pipeline_function_names(flags: Collection[str] = ()) -> list[str]:
    """The catalogue functions this construct builds: all but the WebSocket routes, the API and the
    broadcaster, and of the optional ones only those whose context flag is on (`StageConfig.flags`)."""
    return [
        name
        for name, spec in enabled_functions(flags).items()
        if spec.websocket_route is None and name not in OWNED_ELSEWHERE
    ]


class Pipeline(Construct):
    """`.queues`, `.dlqs` (by catalogue queue name), `.functions` (by catalogue function name),
    `.schedule_groups`, `.scheduler_role`, `.platform_schedules`; `.make(name)` builds any other catalogue
    function the same way."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, storage: Storage, layers: LayerSource
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.storage = storage
        self.layers = layers
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for queue_spec in QUEUES.values():
            self._queue(queue_spec)

        self.schedule_groups: dict[str, scheduler.CfnScheduleGroup] = {}
        for group in SCHEDULE_GROUPS.values():
            cfn_group = scheduler.CfnScheduleGroup(
                self, f"{group.name}Schedules", name=group.physical_name(config.stage)
            )
            cfn_group.apply_removal_policy(config.removal_policy)
            self.schedule_groups[group.name] = cfn_group

        account = Stack.of(self).account
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            # the confused-deputy guard: only this account's schedules may assume it
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": account}}
            ),
            description=f"tradeflow {config.stage}: EventBridge Scheduler invokes the strategy and rate functions",
        )
        # schedules dead-letter events they could not deliver (the platform schedules' DeadLetterConfig)
        self.queues[DEAD_EVENTS].grant_send_messages(self.scheduler_role)

        self.functions: dict[str, lambda_.Function] = {}
        for name in pipeline_function_names(config.flags):
            self.functions[name] = self.make(name)

        self.platform_schedules: dict[str, scheduler.CfnSchedule] = {}
        for name, spec in enabled_functions(config.flags).items():
            if spec.scheduled or spec.rate:
                self._invocable_by_schedules(name)
            if spec.rate:
                self._platform_schedule(spec)

    def make(self, name: str, environment: Mapping[str, str] | None = None) -> lambda_.Function:
        """Build catalogue function `name` in this construct: code, layers, environment and least-privilege
        grants from the catalogue, plus its catalogue triggers (SQS queue, DynamoDB streams). The API and
        realtime constructs call this for theirs (`api`, `broadcaster`, the WebSocket routes)."""
        spec = FUNCTIONS[name]
        reserved = self._reserved_concurrency(name)
        function = make_function(
            self,
            name,
            config=self.config,
            storage=self.storage,
            layers=self.layers,
            queues=self.queues,
            environment=environment,
            scheduler_role=self.scheduler_role if spec.manages_schedules else None,
            strategy_function=self.functions.get("strategy") if spec.manages_schedules else None,
            reserved_concurrency=reserved,
        )
        self._connect(spec, function, reserved)
        return function

    def _reserved_concurrency(self, name: str) -> int | None:
        """Concurrency limits where they protect brokers: `execution` submits orders (config), `reconcile`
        runs one at a time (two runs would repair or halt the same accounts against the same broker)."""
        return {"execution": self.config.execution_concurrency, "reconcile": 1}.get(name)

    def _queue(self, spec: QueueSpec) -> None:
        stage = self.config.stage
        dead_letter: sqs.DeadLetterQueue | None = None
        if spec.has_dlq:
            dlq = self._new_queue(
                f"{spec.name}Dlq",
                name=spec.dlq_physical_name(stage),
                fifo=spec.fifo,
                retention=Duration.seconds(spec.dlq_retention_seconds),
            )
            self.dlqs[spec.name] = dlq
            dead_letter = sqs.DeadLetterQueue(max_receive_count=spec.max_receive_count, queue=dlq)
        queue = self._new_queue(
            f"{spec.name}Queue",
            name=spec.physical_name(stage),
            fifo=spec.fifo,
            retention=Duration.seconds(spec.retention_seconds),
            visibility=Duration.seconds(spec.visibility_timeout_seconds),
            dead_letter=dead_letter,
        )
        if not spec.has_dlq:
            acknowledge(
                queue,
                "SQS3",
                f"{spec.name} is itself a dead-letter destination (stream batches' on-failure destination, the "
                "platform schedules' DeadLetterConfig): nothing redrives from it; its depth alarms.",
            )
        self.queues[spec.name] = queue

    def _new_queue(
        self,
        construct_id: str,
        *,
        name: str,
        fifo: bool,
        retention: Duration,
        visibility: Duration | None = None,
        dead_letter: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            queue_name=name,
            fifo=True if fifo else None,
            # content-based deduplication stays OFF: producers set explicit ids (signal id, client order
            # id, fill id), so an identical body sent under another id is a different message
            content_based_deduplication=False if fifo else None,
            # SQS-managed SSE: no KMS call per message, and no key policy for the services that send to
            # these queues (Lambda's on-failure destinations, Scheduler's dead-letter config)
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention,
            visibility_timeout=visibility,
            dead_letter_queue=dead_letter,
            removal_policy=self.config.removal_policy,
        )

    def _connect(self, spec: FunctionSpec, function: lambda_.Function, reserved: int | None) -> None:
        if spec.queue_source is not None:
            source = spec.queue_source
            window = source.max_batching_window_seconds
            function.add_event_source(
                sources.SqsEventSource(
                    self.queues[source.queue],
                    batch_size=source.batch_size,
                    max_batching_window=Duration.seconds(window) if window else None,
                    report_batch_item_failures=True,
                    # Lambda's SQS poller stops scaling at the limit instead of being throttled by the
                    # reserved concurrency (throttled receives would count towards the DLQ redrive)
                    max_concurrency=max(2, reserved) if reserved else None,
                )
            )
        for stream in spec.stream_sources:
            function.add_event_source(
                sources.DynamoEventSource(
                    self.storage.table(stream.table),
                    starting_position=lambda_.StartingPosition[stream.starting_position],
                    batch_size=stream.batch_size,
                    max_batching_window=(
                        Duration.seconds(stream.max_batching_window_seconds)
                        if stream.max_batching_window_seconds
                        else None
                    ),
                    report_batch_item_failures=True,
                    bisect_batch_on_error=True,
                    retry_attempts=STREAM_RETRY_ATTEMPTS,
                    max_record_age=STREAM_MAX_RECORD_AGE,
                    on_failure=sources.SqsDlq(self.queues[DEAD_EVENTS]),
                )
            )

    def _invocable_by_schedules(self, name: str) -> None:
        function = self.functions[name]
        # the function's own ARN only (grant_invoke would add `:*`, every version and alias)
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
        )

    def _platform_schedule(self, spec: FunctionSpec) -> None:
        assert spec.rate is not None
        group = self.schedule_groups["platform"]
        schedule = scheduler.CfnSchedule(
            self,
            f"{spec.name}PlatformSchedule",
            name=spec.name,
            group_name=group.name,
            description=f"tradeflow {self.config.stage}: {spec.name} {spec.rate}",
            schedule_expression=spec.rate,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.functions[spec.name].function_arn,
                role_arn=self.scheduler_role.role_arn,
                # {"source": "tradeflow.platform", "time": "<aws.scheduler.scheduled-time>", "function": ...}
                input=platform_schedule_input(spec.name),
                # a missed run is superseded by the next one: retry briefly, then dead-letter
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=2, maximum_event_age_in_seconds=300
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.queues[DEAD_EVENTS].queue_arn
                ),
            ),
        )
        schedule.node.add_dependency(group)
        self.platform_schedules[spec.name] = schedule
