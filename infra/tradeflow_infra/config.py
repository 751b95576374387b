"""Stage configuration from CDK context (`cdk.json`, `-c stage=prod`, `-c timestream=true`).

Everything that differs between stages lives here: names (`tradeflow-<stage>-…`, the same names the
catalogue gives), log retention, removal policies, alarm thresholds, the optional Timestream writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node


@dataclass(frozen=True)
class StageConfig:
    stage: str
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy  # tables, bucket, key: RETAIN in prod, DESTROY in dev
    alarm_email: str | None  # subscribed to the ops topic when set
    error_rate_threshold_pct: float  # handler errors / invocations over 5 minutes
    api_5xx_threshold: int  # 5xx answers per 5 minutes
    streamer_heartbeat_minutes: int  # a missing heartbeat this long alarms
    timestream: bool  # the optional Timestream writer (off: DynamoDB + S3 Parquet only)
    api_throttle_rate: int  # requests per second per stage (HTTP API default route)
    api_throttle_burst: int
    execution_concurrency: int  # protects brokers' rate limits

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"

    @property
    def flags(self) -> frozenset[str]:
        """The context flags that are on, as the catalogue names them (`Function.context_flag`)."""
        return frozenset(name for name, on in {"timestream": self.timestream}.items() if on)


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def stage_config(node: Node) -> StageConfig:
    stage = str(node.try_get_context("stage") or "dev")
    prod = stage == "prod"
    return StageConfig(
        stage=stage,
        log_retention=logs.RetentionDays.THREE_MONTHS if prod else logs.RetentionDays.TWO_WEEKS,
        removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        alarm_email=node.try_get_context("alarm_email"),
        error_rate_threshold_pct=float(node.try_get_context("error_rate_threshold_pct") or (1 if prod else 5)),
        api_5xx_threshold=int(node.try_get_context("api_5xx_threshold") or (5 if prod else 20)),
        streamer_heartbeat_minutes=int(node.try_get_context("streamer_heartbeat_minutes") or 3),
        timestream=_flag(node.try_get_context("timestream") or False),
        api_throttle_rate=int(node.try_get_context("api_throttle_rate") or (200 if prod else 50)),
        api_throttle_burst=int(node.try_get_context("api_throttle_burst") or (400 if prod else 100)),
        execution_concurrency=int(node.try_get_context("execution_concurrency") or 10),
    )
