"""The local scheduler on moto: schedules created through the Scheduler API are read back and fired
on the local clock, with Scheduler's context attributes, in time order, with retries and a dead letter."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

from tradeflow.catalogue import schedule_group_name
from tradeflow.local.lambdas import LocalLambdas
from tradeflow.local.scheduler import LocalScheduler
from tradeflow.runtime.aws import client

from helpers import T0, FakeLambdas, create_schedule, deployment, receive

M = timedelta(minutes=1)


def scheduler(lambdas: FakeLambdas) -> LocalScheduler:
    local = LocalScheduler(cast(LocalLambdas, lambdas))
    local.refresh(T0, force=True)
    return local


def fire_due(local: LocalScheduler, until: Any) -> list[tuple[Any, str]]:
    fired = []
    for at, schedule in local.due(until):
        local.fire(at, schedule)
        fired.append((at, schedule.name))
    return fired


def test_deployment_schedules_fire_the_strategy_with_the_scheduled_time(aws: object) -> None:
    dep = deployment(symbols=("XYZ", "ABC"))  # put_schedules: one rate(1 minute) schedule per symbol
    lambdas = FakeLambdas()
    local = scheduler(lambdas)
    assert len(local.schedules) == 2
    assert local.next_due() == T0 + M

    assert local.due(T0 + timedelta(seconds=59)) == []
    fired = fire_due(local, T0 + 2 * M)
    names = sorted(s.name for s in local.schedules.values())
    # time order first, then name: both schedules at :31, then both at :32
    assert fired == [(T0 + M, names[0]), (T0 + M, names[1]), (T0 + 2 * M, names[0]), (T0 + 2 * M, names[1])]
    assert local.fired == 4 and local.failed == 0
    assert [name for name, _ in lambdas.calls] == ["strategy"] * 4
    events = [event for _, event in lambdas.calls]
    assert events[0] == {
        "tenant_id": dep.tenant_id,
        "deployment_id": dep.deployment_id,
        "symbol": events[0]["symbol"],
        "scheduled_time": "2026-01-05T14:31:00Z",
    }
    assert sorted(e["symbol"] for e in events[:2]) == ["ABC", "XYZ"]
    assert [e["scheduled_time"] for e in events] == ["2026-01-05T14:31:00Z"] * 2 + ["2026-01-05T14:32:00Z"] * 2
    # each schedule advanced past what it fired: nothing is due twice
    assert local.due(T0 + 2 * M) == []
    assert local.next_due() == T0 + 3 * M


def test_due_fires_are_ordered_by_time_across_schedules(aws: object) -> None:
    create_schedule("every-5", "rate(5 minutes)")
    create_schedule("every-2", "rate(2 minutes)")
    create_schedule("once", "at(2026-01-05T14:33:30)")
    create_schedule("noon", "cron(0 15 * * ? *)")
    lambdas = FakeLambdas()
    local = scheduler(lambdas)

    fired = fire_due(local, T0 + 30 * M)
    start = T0.replace(minute=30)
    expected = sorted(
        [(start + k * 2 * M, "every-2") for k in range(1, 16)]
        + [(start + k * 5 * M, "every-5") for k in range(1, 7)]
        + [(start + 3.5 * M, "once"), (T0.replace(hour=15, minute=0), "noon")]
    )
    assert fired == expected
    assert [e["name"] for _, e in lambdas.calls] == [name for _, name in expected]
    assert [e["at"] for _, e in lambdas.calls][:3] == [
        "2026-01-05T14:32:00Z",
        "2026-01-05T14:33:30Z",
        "2026-01-05T14:34:00Z",
    ]
    # the at() schedule fired once and is done
    assert fire_due(local, T0 + 60 * M).count((start + 3.5 * M, "once")) == 0


def test_context_attributes_are_substituted(aws: object) -> None:
    payload = json.dumps(
        {
            "time": "<aws.scheduler.scheduled-time>",
            "arn": "<aws.scheduler.schedule-arn>",
            "attempt": "<aws.scheduler.attempt-number>",
            "execution": "<aws.scheduler.execution-id>",
        }
    )
    arn = create_schedule("ctx", "rate(1 minute)", payload=payload, retries=1)
    lambdas = FakeLambdas(failures=1)
    local = scheduler(lambdas)
    fire_due(local, T0 + M)

    first, second = (event for _, event in lambdas.calls)
    assert first["time"] == second["time"] == "2026-01-05T14:31:00Z"
    assert first["arn"] == arn
    assert (first["attempt"], second["attempt"]) == ("1", "2")
    assert first["execution"] and not first["execution"].startswith("<aws.")
    assert (local.fired, local.failed) == (1, 0)
    assert receive("dead_events") == []


def test_disabled_schedules_do_not_fire_until_enabled(aws: object) -> None:
    create_schedule("on", "rate(1 minute)")
    create_schedule("off", "rate(1 minute)", state="DISABLED")
    lambdas = FakeLambdas()
    local = scheduler(lambdas)
    assert {s.name: s.state for s in local.schedules.values()} == {"on": "ENABLED", "off": "DISABLED"}

    assert [name for _, name in fire_due(local, T0 + 3 * M)] == ["on"] * 3
    assert {e["name"] for _, e in lambdas.calls} == {"on"}

    # disabling "on" through the API stops it at the next refresh; deleting one removes it
    sched = client("scheduler")
    detail = sched.get_schedule(Name="on", GroupName=schedule_group_name())
    sched.update_schedule(
        Name="on",
        GroupName=schedule_group_name(),
        ScheduleExpression=detail["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        State="DISABLED",
        Target={k: detail["Target"][k] for k in ("Arn", "RoleArn", "Input")},
    )
    sched.delete_schedule(Name="off", GroupName=schedule_group_name())
    local.refresh(T0 + 3 * M, force=True)
    assert [s.name for s in local.schedules.values()] == ["on"]
    assert local.next_due() is None
    assert fire_due(local, T0 + 10 * M) == []
    assert len(lambdas.calls) == 3


def test_failures_are_retried_per_policy_then_dead_lettered_with_the_reason(aws: object) -> None:
    create_schedule("flaky", "rate(1 minute)", retries=2)
    lambdas = FakeLambdas(failures=-1)
    local = scheduler(lambdas)
    fire_due(local, T0 + M)

    assert len(lambdas.calls) == 3  # the first attempt and two retries
    assert (local.fired, local.failed) == (0, 1)
    [dead] = receive("dead_events")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "RuntimeError: boom #3"
    body = json.loads(dead["Body"])
    assert body["scheduled_time"] == "2026-01-05T14:31:00.000000Z"
    assert body["schedule"].endswith("/flaky")
    assert json.loads(body["input"])["at"] == "<aws.scheduler.scheduled-time>"

    # a schedule whose target is no local function is dead-lettered at once, without invoking anything
    create_schedule("elsewhere", "rate(1 minute)", target_arn="arn:aws:lambda:us-east-1:123456789012:function:not-ours")
    local.refresh(T0 + M, force=True)
    fire_due(local, T0 + 2 * M)
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in receive("dead_events"))
    assert reasons[0] == "RuntimeError: boom #6"
    assert "not-ours" in reasons[1] and "not a local function" in reasons[1]
    assert len(lambdas.calls) == 6  # only "flaky" was invoked, three more times
