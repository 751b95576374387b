"""The platform's own fixed schedules (e.g. reconciliation every 5 minutes): one EventBridge Scheduler
schedule per catalogue function with a `rate`, in the `platform` schedule group. The CDK app declares
the same schedules; the local cloud creates them in moto so its scheduler fires them on the local clock
like the deployments' schedules. The payload carries the scheduled time (design rule 6)."""

from __future__ import annotations

import contextlib
import json

from tradeflow.catalogue import FUNCTIONS, schedule_group_name
from tradeflow.runtime.aws import client
from tradeflow.scheduling.schedules import LOCAL_ACCOUNT, aws_region, scheduler_role_arn

PLATFORM_INPUT = {"source": "tradeflow.platform", "time": "<aws.scheduler.scheduled-time>"}


def platform_schedule_input(function: str) -> str:
    return json.dumps({**PLATFORM_INPUT, "function": function})


def create_platform_schedules() -> list[str]:
    """Create (or leave) one schedule per function with a `rate`; returns their names."""
    scheduler = client("scheduler")
    group = schedule_group_name("platform")
    names = []
    for name, spec in FUNCTIONS.items():
        if spec.rate is None:
            continue
        arn = f"arn:aws:lambda:{aws_region()}:{LOCAL_ACCOUNT}:function:{spec.physical_name()}"
        with contextlib.suppress(scheduler.exceptions.ConflictException):
            scheduler.create_schedule(
                Name=name,
                GroupName=group,
                ScheduleExpression=spec.rate,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": arn, "RoleArn": scheduler_role_arn(), "Input": platform_schedule_input(name)},
                State="ENABLED",
            )
        names.append(name)
    return names
