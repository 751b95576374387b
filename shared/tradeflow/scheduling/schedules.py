"""Deployments' schedules in EventBridge Scheduler.

Each (deployment, symbol) gets one schedule in the catalogue's schedule group whose target is the
strategy function, with an input carrying `<aws.scheduler.scheduled-time>`: Scheduler substitutes the
time the invocation was *scheduled* for, which the strategy uses as "now" (design rule 6). The local
cloud reads the same schedules back through the Scheduler API and fires them itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from tradeflow.catalogue import function_name, schedule_group_name
from tradeflow.domain import Deployment
from tradeflow.runtime.aws import client

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
LOCAL_ACCOUNT = "123456789012"


def schedule_name(tenant_id: str, deployment_id: str, symbol: str) -> str:
    """A valid, unique schedule name (<= 64 chars of [0-9A-Za-z_.-])."""
    raw = f"{tenant_id}.{deployment_id}.{symbol}"
    clean = re.sub(r"[^0-9A-Za-z_.-]", "-", raw)
    if len(clean) <= 64:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    return f"{clean[:51]}-{digest}"


def schedule_input(tenant_id: str, deployment_id: str, symbol: str) -> str:
    return json.dumps(
        {"tenant_id": tenant_id, "deployment_id": deployment_id, "symbol": symbol, "scheduled_time": SCHEDULED_TIME}
    )


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def strategy_target_arn() -> str:
    return os.environ.get("TRADEFLOW_STRATEGY_FUNCTION_ARN") or (
        f"arn:aws:lambda:{aws_region()}:{LOCAL_ACCOUNT}:function:{function_name('strategy')}"
    )


def scheduler_role_arn() -> str:
    return os.environ.get("TRADEFLOW_SCHEDULER_ROLE_ARN") or (
        f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{function_name('strategy')}-scheduler"
    )


def put_schedules(deployment: Deployment, enabled: bool = True) -> list[str]:
    """Create or update the deployment's schedules (one per symbol); returns their names."""
    scheduler = client("scheduler")
    group = schedule_group_name()
    names = []
    for symbol in deployment.symbols:
        name = schedule_name(deployment.tenant_id, deployment.deployment_id, symbol)
        request = {
            "Name": name,
            "GroupName": group,
            "ScheduleExpression": deployment.schedule,
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {
                "Arn": strategy_target_arn(),
                "RoleArn": scheduler_role_arn(),
                "Input": schedule_input(deployment.tenant_id, deployment.deployment_id, symbol),
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300},
            },
            "Description": f"{deployment.strategy}: {deployment.tenant_id}/{deployment.deployment_id}/{symbol}",
        }
        try:
            scheduler.create_schedule(**request)
        except scheduler.exceptions.ConflictException:
            scheduler.update_schedule(**request)
        names.append(name)
    return names


def delete_schedules(deployment: Deployment) -> None:
    scheduler = client("scheduler")
    for symbol in deployment.symbols:
        name = schedule_name(deployment.tenant_id, deployment.deployment_id, symbol)
        try:
            scheduler.delete_schedule(Name=name, GroupName=schedule_group_name())
        except scheduler.exceptions.ResourceNotFoundException:
            continue
