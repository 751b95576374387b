"""Observability: the stage's CloudWatch dashboard, its alarms and the SNS ops topic they notify.

Metrics come from three places:
- the functions' own EMF metrics (Powertools, namespace `tradeflow`, dimension `service` =
  `tradeflow-<function>`; the streamer's are `tradeflow-streamer`): Signals, RiskApproved/RiskRejected,
  OrderMessages, Fills, AccountsHalted, StreamerHeartbeat, …;
- AWS's metrics of the resources: Lambda errors/invocations/throttles/duration/iterator age, SQS queue
  depth, HTTP API latency and 5xx, ECS CPU and memory;
- Logs Insights over the risk function's JSON logs for rejections by reason (a reason is free text, so it
  is a log field, not a metric dimension).

Alarms (`.alarms`, keyed by the stable names the README's runbooks use; each CloudWatch alarm is named
`tradeflow-<stage>-<key>`), built by iterating the catalogue:
- `dlq-<queue>`: a message in a dead-letter queue (each queue's DLQ, and `dead_events`, which is itself the
  dead-letter target of schedules and streams);
- `errors-<function>`: handler error rate (errors / invocations over 5 minutes) above the stage threshold;
- `throttles-<function>`: any throttled invocation;
- `stream-age-<function>`: a stream consumer falling more than 15 minutes behind its DynamoDB stream;
- `trading-halted`: reconcile halted an account (`AccountsHalted`); `reconcile-errors`: a reconcile run
  failed (`ReconcileErrors`), so the books are not being checked;
- `api-5xx`: the REST API answered too many 5xx;
- `streamer-heartbeat`: no `StreamerHeartbeat` for `streamer_heartbeat_minutes` (missing data breaches:
  a dead streamer publishes nothing).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from tradeflow.catalogue import FUNCTIONS, QUEUES, SERVICES, enabled_functions
from tradeflow_infra.api import Api
from tradeflow_infra.config import StageConfig
from tradeflow_infra.pipeline import Pipeline
from tradeflow_infra.realtime import Realtime
from tradeflow_infra.storage import Storage
from tradeflow_infra.streamer import Streamer

NAMESPACE = "tradeflow"  # tradeflow.runtime.observability.NAMESPACE
STREAMER = SERVICES["streamer"].name  # the Fargate service whose heartbeat is watched
FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_MINUTE = cdk.Duration.minutes(1)
STREAM_AGE_LIMIT_MS = 15 * 60 * 1000


def service_metric(
    owner: str, name: str, period: cdk.Duration = FIVE_MINUTES, label: str | None = None
) -> cloudwatch.Metric:
    """An EMF metric one of our functions (or the streamer) publishes through Powertools."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": f"tradeflow-{owner}"},
        statistic=cloudwatch.Stats.SUM,
        period=period,
        label=label or name,
    )


class Observability(Construct):
    """The ops topic, the `tradeflow-<stage>` dashboard and the alarms.

    Exposes `.topic`, `.dashboard`, `.alarms` (stable key -> alarm) and `.functions` (every catalogue
    function by name, as watched here).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        storage: Storage,
        pipeline: Pipeline,
        api: Api,
        realtime: Realtime,
        streamer: Streamer,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.functions = self._all_functions(config, pipeline, realtime, api)
        self.dead_letter_queues = self._dead_letter_queues(pipeline)
        self.topic = self._topic(config)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarms(config, api)
        self.dashboard = self._dashboard(config, api, streamer)

    # -- what is watched --------------------------------------------------------------------------------

    @staticmethod
    def _all_functions(
        config: StageConfig, pipeline: Pipeline, realtime: Realtime, api: Api
    ) -> dict[str, lambda_.Function]:
        """Every catalogue function this stage has (the optional ones only with their context flag on)."""
        built: dict[str, lambda_.Function] = {**pipeline.functions, **realtime.functions, "api": api.function}
        expected = enabled_functions(config.flags)
        missing = sorted(set(expected) - set(built))
        if missing:
            raise ValueError(f"catalogue functions not built by any construct (so not watched): {missing}")
        return {name: built[name] for name in expected}

    @staticmethod
    def _dead_letter_queues(pipeline: Pipeline) -> dict[str, sqs.IQueue]:
        """Catalogue queue name -> the queue where its dead letters end (its DLQ, or itself for dead_events)."""
        return {name: pipeline.dlqs[name] if spec.has_dlq else pipeline.queues[name] for name, spec in QUEUES.items()}

    # -- the topic --------------------------------------------------------------------------------------

    def _topic(self, config: StageConfig) -> sns.Topic:
        key = kms.Key(
            self,
            "TopicKey",
            description=f"tradeflow {config.stage}: encrypts the ops alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        # CloudWatch publishes alarm notifications into the encrypted topic: it needs the data key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            )
        )
        topic = sns.Topic(
            self,
            "OpsTopic",
            topic_name=f"tradeflow-{config.stage}-ops",
            display_name=f"tradeflow {config.stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    # -- alarms -----------------------------------------------------------------------------------------

    def _alarm(
        self,
        key: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"Alarm-{key}",
            alarm_name=f"tradeflow-{self.config.stage}-{key}",
            alarm_description=f"{description} Runbook: README, section 'Alarms', entry '{key}'.",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=missing,
        )
        action = actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)  # ops learn when it is over, too
        self.alarms[key] = alarm
        return alarm

    def _alarms(self, config: StageConfig, api: Api) -> None:
        for name, queue in self.dead_letter_queues.items():
            self._alarm(
                f"dlq-{name}",
                queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=0,
                description=f"Messages are waiting in {queue.queue_name}: something could not be processed.",
            )
        for name, function in self.functions.items():
            errors = function.metric_errors(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM)
            invocations = function.metric_invocations(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM)
            self._alarm(
                f"errors-{name}",
                cloudwatch.MathExpression(
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    using_metrics={"errors": errors, "invocations": invocations},
                    label=f"{name} error rate (%)",
                    period=FIVE_MINUTES,
                ),
                threshold=config.error_rate_threshold_pct,
                description=f"The {name} function fails more than {config.error_rate_threshold_pct:g}% of its "
                "invocations.",
            )
            self._alarm(
                f"throttles-{name}",
                function.metric_throttles(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM),
                threshold=0,
                description=f"The {name} function was throttled (concurrency limit reached).",
            )
            if FUNCTIONS[name].stream_sources:
                self._alarm(
                    f"stream-age-{name}",
                    function.metric(
                        "IteratorAge", period=FIVE_MINUTES, statistic=cloudwatch.Stats.MAXIMUM, label="iterator age"
                    ),
                    threshold=STREAM_AGE_LIMIT_MS,
                    description=f"The {name} function is more than 15 minutes behind its DynamoDB streams.",
                )
        self._alarm(
            "trading-halted",
            service_metric("reconcile", "AccountsHalted"),
            threshold=0,
            description="Reconciliation found a difference it cannot explain and halted a broker account.",
        )
        self._alarm(
            "reconcile-errors",
            service_metric("reconcile", "ReconcileErrors"),
            threshold=0,
            description="A reconciliation run failed: the account's books are not being checked.",
        )
        self._alarm(
            "api-5xx",
            api.stage.metric_server_error(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM),
            threshold=config.api_5xx_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description=f"The REST API answered {config.api_5xx_threshold} or more 5xx in 5 minutes.",
        )
        minutes = config.streamer_heartbeat_minutes
        self._alarm(
            "streamer-heartbeat",
            service_metric(STREAMER, "StreamerHeartbeat", period=cdk.Duration.minutes(minutes)),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,  # a dead streamer publishes nothing at all
            description=f"No streamer heartbeat for {minutes} minutes: broker streams (bars, fills) are down.",
        )

    # -- the dashboard ----------------------------------------------------------------------------------

    def _dashboard(self, config: StageConfig, api: Api, streamer: Streamer) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"tradeflow-{config.stage}",
            default_interval=cdk.Duration.hours(3),
        )
        fns = self.functions
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Signals",
                left=[service_metric("strategy", "Evaluations"), service_metric("strategy", "Signals")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Risk decisions (rejections)",
                left=[
                    service_metric("risk", "RiskApproved"),
                    service_metric("risk", "RiskRejected"),
                    service_metric("risk", "RiskDuplicate"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Orders and fills",
                left=[service_metric("execution", "OrderMessages"), service_metric("execution", "Fills")],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="Rejections by reason (risk function logs)",
                log_group_names=[fns["risk"].log_group.log_group_name],
                query_lines=[
                    "fields reason",
                    'filter event = "risk" and status = "rejected"',
                    "stats count(*) as rejections by reason",
                    "sort rejections desc",
                    "limit 20",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Trading halts and reconciliation",
                left=[
                    service_metric("reconcile", "AccountsHalted"),
                    service_metric("reconcile", "UnexplainedDifferences"),
                    service_metric("reconcile", "ReconcileErrors"),
                    service_metric("reconcile", "ReconcileRepairs"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM, label=name
                    )
                    for name, queue in self.dead_letter_queues.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Streamer heartbeat",
                left=[
                    service_metric(STREAMER, "StreamerHeartbeat", period=ONE_MINUTE),
                    service_metric(STREAMER, "StreamsRunning", period=ONE_MINUTE),
                    service_metric(STREAMER, "StreamLeasesHeld", period=ONE_MINUTE),
                ],
                right=[
                    streamer.service.metric_cpu_utilization(period=FIVE_MINUTES, label="CPU %"),
                    streamer.service.metric_memory_utilization(period=FIVE_MINUTES, label="memory %"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Handler errors",
                left=[
                    fn.metric_errors(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM, label=name)
                    for name, fn in fns.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Handler duration p99 (ms)",
                left=[fn.metric_duration(period=FIVE_MINUTES, statistic="p99", label=name) for name, fn in fns.items()],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Throttles",
                left=[
                    fn.metric_throttles(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM, label=name)
                    for name, fn in fns.items()
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    api.stage.metric_latency(period=FIVE_MINUTES, statistic=stat, label=f"latency {stat}")
                    for stat in ("p50", "p90", "p99")
                ],
                right=[
                    api.stage.metric_integration_latency(period=FIVE_MINUTES, statistic="p99", label="integration p99")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[api.stage.metric_count(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM, label="requests")],
                right=[
                    api.stage.metric_client_error(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM, label="4xx"),
                    api.stage.metric_server_error(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM, label="5xx"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Live updates (WebSocket)",
                left=[
                    service_metric("broadcaster", "Updates"),
                    service_metric("broadcaster", "UpdatesDelivered"),
                    service_metric("broadcaster", "PostFailures"),
                    service_metric("broadcaster", "ConnectionsGone"),
                ],
                right=[service_metric("ws_connect", "WsConnected"), service_metric("ws_connect", "WsRefused")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Stream consumers' iterator age (ms)",
                left=[
                    fn.metric("IteratorAge", period=FIVE_MINUTES, statistic=cloudwatch.Stats.MAXIMUM, label=name)
                    for name, fn in fns.items()
                    if FUNCTIONS[name].stream_sources
                ],
                width=12,
            ),
        )
        return dashboard
