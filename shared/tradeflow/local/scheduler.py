"""Firing EventBridge Scheduler schedules on the local clock (moto stores schedules, never fires them).

Schedules are read back through the Scheduler API, so one created by the API or by boto3 just works.
Supported expressions: `rate(N minute|minutes|hour|hours|day|days)`, `at(YYYY-MM-DDThh:mm:ss)` and
`cron(min hour day-of-month month day-of-week year)`. Locally, rate schedules fire on the epoch-aligned
grid of their period (AWS anchors them to the creation time): a replay is then identical every run.
The target's input gets Scheduler's context attributes substituted; a failed invocation is retried per
the schedule's retry policy, then dead-lettered with the reason.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tradeflow.catalogue import SCHEDULE_GROUPS
from tradeflow.domain.types import iso
from tradeflow.local.lambdas import LocalLambdas
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client

log = logging.getLogger("tradeflow.local")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ExpressionError(ValueError):
    pass


def next_fire(expression: str, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, or None when the schedule never fires again."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        period = int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")]
        if period <= 0:
            raise ExpressionError(f"{expression}: the rate must be positive")
        elapsed = int((after - EPOCH).total_seconds())
        return EPOCH + timedelta(seconds=(elapsed // period + 1) * period)
    if expression.startswith("at(") and expression.endswith(")"):
        try:
            moment = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)
        except ValueError as exc:
            raise ExpressionError(f"{expression}: expected at(yyyy-mm-ddThh:mm:ss)") from exc
        return moment if moment > after else None
    if expression.startswith("cron(") and expression.endswith(")"):
        return _next_cron(expression[5:-1], after)
    raise ExpressionError(f"unsupported schedule expression {expression!r}")


def _cron_day_of_week(field: str) -> str:
    """AWS numbers days of the week 1-7 from Sunday, croniter 0-6. Only day numbers move: the `k` of
    `n#k` (the k-th weekday n of the month) stays; AWS `nL` (the last weekday n) is croniter's `Ln`."""

    def shift(match: re.Match[str]) -> str:
        day = int(match.group())
        if not 1 <= day <= 7:
            raise ExpressionError(f"day of week {day}: AWS days of the week are 1-7 (SUN-SAT)")
        return str(day - 1)

    field = re.sub(r"(?<![#/\d])\d+", shift, field)
    return re.sub(r"(?<![\w#/])(\d)L(?!\w)", r"L\1", field)


def _next_cron(body: str, after: datetime) -> datetime | None:
    from croniter import CroniterBadDateError, CroniterError, croniter

    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError(f"cron({body}): AWS cron expressions have 6 fields")
    minute, hour, dom, month, dow, year = fields
    # croniter's 7-field form is: minute hour day month day-of-week second year
    spec = " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, _cron_day_of_week(dow), "0", year))
    try:
        found: datetime = croniter(spec, after.astimezone(UTC)).get_next(datetime)
    except CroniterBadDateError:
        return None  # no such time any more (e.g. only in past years)
    except (CroniterError, ValueError) as exc:
        raise ExpressionError(f"cron({body}): {exc}") from exc
    return found.astimezone(UTC)


@dataclass
class LocalSchedule:
    name: str
    group: str
    arn: str
    expression: str
    target_arn: str
    input: str
    state: str
    retries: int
    modified: Any
    next_at: datetime | None = None


class LocalScheduler:
    def __init__(self, lambdas: LocalLambdas, refresh_seconds: float = 1.0) -> None:
        self.lambdas = lambdas
        self.queues = SqsQueues()
        self.refresh_seconds = refresh_seconds
        self.schedules: dict[tuple[str, str], LocalSchedule] = {}
        self._refreshed = 0.0
        self.fired = 0
        self.failed = 0
        self._lock = threading.Lock()

    def refresh(self, now: datetime, force: bool = False) -> None:
        if not force and time.monotonic() - self._refreshed < self.refresh_seconds:
            return
        self._refreshed = time.monotonic()
        scheduler = client("scheduler")
        seen = set()
        for group_spec in SCHEDULE_GROUPS.values():
            group = group_spec.physical_name()
            token = None
            while True:
                kwargs: dict[str, Any] = {"GroupName": group, "MaxResults": 100}
                if token:
                    kwargs["NextToken"] = token
                page = scheduler.list_schedules(**kwargs)
                for summary in page.get("Schedules", []):
                    key = (group, summary["Name"])
                    seen.add(key)
                    known = self.schedules.get(key)
                    modified = summary.get("LastModificationDate")
                    if known is not None and known.modified == modified and known.state == summary.get("State"):
                        continue
                    detail = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
                    target = detail["Target"]
                    schedule = LocalSchedule(
                        name=detail["Name"],
                        group=group,
                        arn=detail["Arn"],
                        expression=detail["ScheduleExpression"],
                        target_arn=target["Arn"],
                        input=target.get("Input", "{}"),
                        state=detail.get("State", "ENABLED"),
                        retries=int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 0)),
                        modified=modified,
                    )
                    try:
                        # New or changed (e.g. resumed): first fire after now, no backlog of missed runs.
                        schedule.next_at = next_fire(schedule.expression, now)
                    except (ExpressionError, ValueError) as exc:
                        log.error("schedule %s has an invalid expression: %s", schedule.name, exc)
                        schedule.next_at = None
                    self.schedules[key] = schedule
                token = page.get("NextToken")
                if not token:
                    break
        for key in list(self.schedules):
            if key not in seen:
                del self.schedules[key]

    def next_due(self) -> datetime | None:
        times = [s.next_at for s in self.schedules.values() if s.state == "ENABLED" and s.next_at is not None]
        return min(times) if times else None

    def due(self, now: datetime) -> list[tuple[datetime, LocalSchedule]]:
        """Every (fire time, schedule) due at or before `now`, in time order; advances each schedule."""
        firing: list[tuple[datetime, LocalSchedule]] = []
        for schedule in self.schedules.values():
            while schedule.state == "ENABLED" and schedule.next_at is not None and schedule.next_at <= now:
                firing.append((schedule.next_at, schedule))
                schedule.next_at = next_fire(schedule.expression, schedule.next_at)
        firing.sort(key=lambda pair: (pair[0], pair[1].name))
        return firing

    def fire(self, at: datetime, schedule: LocalSchedule) -> None:
        name = self.lambdas.by_arn(schedule.target_arn)
        execution_id = str(uuid.uuid4())
        if name is None:
            self._dead_letter(schedule, at, f"target {schedule.target_arn} is not a local function")
            return
        for attempt in range(schedule.retries + 1):
            payload = (
                schedule.input.replace("<aws.scheduler.scheduled-time>", iso(at).replace(".000000", ""))
                .replace("<aws.scheduler.execution-id>", execution_id)
                .replace("<aws.scheduler.attempt-number>", str(attempt + 1))
                .replace("<aws.scheduler.schedule-arn>", schedule.arn)
            )
            try:
                event = json.loads(payload)
                self.lambdas.invoke(name, event)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("schedule %s attempt %d failed: %s", schedule.name, attempt + 1, reason)
                if attempt == schedule.retries:
                    self.failed += 1
                    self._dead_letter(schedule, at, reason)
                continue
            self.fired += 1
            return

    def _dead_letter(self, schedule: LocalSchedule, at: datetime, reason: str) -> None:
        body = json.dumps({"schedule": schedule.arn, "scheduled_time": iso(at), "input": schedule.input})
        self.queues.dead_letter("dead_events", body, "scheduler", f"{schedule.name}:{iso(at)}", reason)
