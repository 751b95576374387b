"""`deployments`: create (built-in or saved strategy, plan defaults, paper/live rules, schedule
validation), list with filters and pages, get, pause/resume/stop (schedules follow, idempotent, stop is
final), status per symbol; another tenant's deployment is not found for every route."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.catalogue import schedule_group_name
from tradeflow.domain import Account, Evaluation, SignalAction
from tradeflow.domain.schedule_expressions import validate_schedule
from tradeflow.runtime.aws import client
from tradeflow.scheduling.schedules import schedule_name
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.evaluations import EvaluationRepository
from tradeflow.storage.strategies import SavedStrategy, StrategyDefinition, StrategyRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import T0, account

SPEC: dict[str, Any] = {
    "name": "dip",
    "side": "both",
    "entry": {"indicator": "rsi", "params": {"period": 14}, "op": "<", "value": 30},
    "short_entry": {"indicator": "rsi", "params": {"period": 14}, "op": ">", "value": 70},
    "sizing": {"method": "fixed_quantity", "quantity": 3},
}


@pytest.fixture
def desk(api: Api) -> Api:
    account(TENANT_A, "paper-1")
    account(TENANT_B, "paper-b")
    AccountRepository().create(
        Account(tenant_id=TENANT_A, account_id="alpaca-1", broker="alpaca", mode="live", created_at=T0, updated_at=T0)
    )
    saved = SavedStrategy(
        strategy_id="str-1",
        tenant_id=TENANT_A,
        name="RSI dip",
        definition=StrategyDefinition(spec=SPEC),
        warmup=15,
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by="user:user-1",
        updated_by="user:user-1",
    )
    StrategyRepository().create(saved, AuditRepository.event(TENANT_A, T0, "user:user-1", "strategy.created", "str-1"))
    return api


def body(**overrides: Any) -> dict[str, Any]:
    return {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["GOOG", "AAPL"],
            "account_id": "paper-1", **overrides}  # fmt: skip


def create(api: Api, tenant: str = TENANT_A, **overrides: Any) -> dict[str, Any]:
    response = api.post("/v1/deployments", tenant, json=body(**overrides))
    assert response.status_code == 201, response.json()
    created: dict[str, Any] = response.json()
    return created


def schedule(tenant: str, deployment_id: str, symbol: str) -> dict[str, Any] | None:
    scheduler = client("scheduler")
    try:
        found: dict[str, Any] = scheduler.get_schedule(
            Name=schedule_name(tenant, deployment_id, symbol), GroupName=schedule_group_name()
        )
    except scheduler.exceptions.ResourceNotFoundException:
        return None
    return found


def field_errors(response: Any) -> list[str]:
    assert response.status_code == 422, response.json()
    return [e["field"] for e in response.json()["errors"]]


# --- create ---------------------------------------------------------------------------------------


def test_create_a_built_in_makes_one_enabled_schedule_per_symbol(desk: Api) -> None:
    dep = create(desk, schedule="rate(5 minutes)", timeframe="5m", risk={"max_open_positions": 3})
    assert dep["status"] == "active" and dep["tenant_id"] == TENANT_A and dep["deployment_id"].startswith("dep_")
    assert (dep["strategy"], dep["params"], dep["name"]) == ("sma_cross", {"fast": 5, "slow": 20}, "sma_cross")
    assert dep["risk"]["max_open_positions"] == 3 and dep["risk"]["sizing"]["percent"] == "10"
    for symbol in ("GOOG", "AAPL"):
        found = schedule(TENANT_A, dep["deployment_id"], symbol)
        assert found is not None and found["State"] == "ENABLED"
        assert found["ScheduleExpression"] == "rate(5 minutes)"
    [event] = [e for e in AuditRepository().list(TENANT_A) if e.subject == dep["deployment_id"]]
    assert event.action == "deployment.created" and event.actor == "user:user-1"
    assert desk.get(f"/v1/deployments/{dep['deployment_id']}").json() == dep


def test_a_saved_strategy_is_copied_and_its_plan_sets_sizing_and_shorting(desk: Api) -> None:
    dep = create(desk, strategy=None, params=None, strategy_id="str-1")
    assert (dep["strategy"], dep["name"]) == ("rules", "RSI dip")
    assert dep["params"]["entry"]["value"] == 30
    assert dep["risk"]["sizing"]["method"] == "fixed_quantity" and dep["risk"]["sizing"]["quantity"] == "3"
    assert dep["risk"]["allow_short"] is True  # the plan trades both sides
    [event] = [e for e in AuditRepository().list(TENANT_A) if e.subject == dep["deployment_id"]]
    assert event.details["strategy_id"] == "str-1" and event.details["version"] == 1


def test_the_request_s_risk_wins_over_the_plan(desk: Api) -> None:
    risk = {"sizing": {"method": "percent_of_equity", "percent": 5}, "allow_short": False}
    dep = create(desk, strategy=None, params=None, strategy_id="str-1", risk=risk)
    assert dep["risk"]["sizing"]["method"] == "percent_of_equity" and dep["risk"]["sizing"]["percent"] == "5"
    assert dep["risk"]["allow_short"] is False


def test_live_needs_a_broker_account(desk: Api) -> None:
    refused = desk.post("/v1/deployments", json=body(mode="live"))
    assert field_errors(refused) == ["body.mode"] and "paper account" in refused.json()["detail"]
    assert create(desk, mode="live", account_id="alpaca-1")["mode"] == "live"


def test_created_paused_has_disabled_schedules(desk: Api) -> None:
    dep = create(desk, paused=True)
    assert dep["status"] == "paused"
    found = schedule(TENANT_A, dep["deployment_id"], "GOOG")
    assert found is not None and found["State"] == "DISABLED"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"symbols": []}, "body.symbols"),
        ({"symbols": ["GOOG", "GOOG"]}, "body.symbols"),
        ({"symbols": ["BAD SYMBOL"]}, "body.symbols.0"),
        ({"schedule": "every minute"}, "body.schedule"),
        ({"schedule": "rate(1 minutes)"}, "body.schedule"),
        ({"schedule": "rate(0 minutes)"}, "body.schedule"),
        ({"schedule": "cron(0 12 * * * *)"}, "body.schedule"),
        ({"schedule": "at(2026-13-01T00:00:00)"}, "body.schedule"),
        ({"timeframe": "7m"}, "body.timeframe"),
        ({"mode": "yolo"}, "body.mode"),
        ({"risk": {"sizing": {"method": "fixed_quantity"}}}, "body.risk.sizing"),
        ({"risk": {"max_leverage": 3}}, "body.risk.max_leverage"),
        ({"surprise": 1}, "body.surprise"),
        ({"account_id": "nope"}, "body.account_id"),
        ({"account_id": "paper-b"}, "body.account_id"),  # another tenant's account: not found
        ({"strategy": "no_such_strategy"}, "body.params"),
        ({"params": {"fast": -1, "slow": 20}}, "body.params"),
        ({"strategy": None, "params": None}, "body.strategy_id"),
        ({"strategy_id": "str-1"}, "body.strategy_id"),  # both
        ({"strategy": None, "params": None, "strategy_id": "missing"}, "body.strategy_id"),
    ],
)
def test_an_invalid_request_is_a_422_naming_the_field(desk: Api, overrides: dict[str, Any], field: str) -> None:
    response = desk.post("/v1/deployments", json=body(**overrides))
    assert field in field_errors(response)


def test_another_tenant_s_saved_strategy_is_not_found(desk: Api) -> None:
    response = desk.post(
        "/v1/deployments", TENANT_B, json=body(strategy=None, params=None, strategy_id="str-1", account_id="paper-b")
    )
    assert field_errors(response) == ["body.strategy_id"] and "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minute)", "rate(15 minutes)", "rate(1 day)", "cron(0/5 14-21 ? * MON-FRI *)", "cron(0 12 1 * ? 2027)",
     "cron(15 10 ? * 6L 2026-2030)", "cron(0 9 ? * 2#1 *)", "at(2026-01-05T14:30:00)"],
)  # fmt: skip
def test_valid_schedule_expressions(expression: str) -> None:
    assert validate_schedule(expression) == expression


# --- list -----------------------------------------------------------------------------------------


def test_list_pages_and_filters(desk: Api) -> None:
    made = [create(desk, symbols=[f"S{i}"])["deployment_id"] for i in range(5)]
    desk.post(f"/v1/deployments/{made[0]}/pause")
    desk.post(f"/v1/deployments/{made[1]}/stop")
    create(desk, TENANT_B, account_id="paper-b")

    seen: list[str] = []
    cursor = None
    while True:
        page = desk.get("/v1/deployments", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["items"]) <= 2
        seen += [d["deployment_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made)

    paused = desk.get("/v1/deployments", params={"status": "paused"}).json()
    assert [d["deployment_id"] for d in paused["items"]] == [made[0]]
    active = desk.get("/v1/deployments", params={"status": "active", "limit": 2}).json()
    assert len(active["items"]) == 2 and active["next_cursor"]  # filtered pages are full
    assert desk.get("/v1/deployments", params={"account_id": "alpaca-1"}).json()["items"] == []
    assert field_errors(desk.get("/v1/deployments", params={"status": "sleeping"})) == ["query.status"]
    assert field_errors(desk.get("/v1/deployments", params={"limit": 0})) == ["query.limit"]


def test_a_cursor_of_another_tenant_is_refused(desk: Api) -> None:
    for i in range(3):
        create(desk, symbols=[f"S{i}"])
    cursor = desk.get("/v1/deployments", params={"limit": 1}).json()["next_cursor"]
    assert field_errors(desk.get("/v1/deployments", TENANT_B, params={"cursor": cursor})) == ["query.cursor"]


# --- lifecycle ------------------------------------------------------------------------------------


def test_pause_resume_stop_drive_the_schedules_and_are_idempotent(desk: Api) -> None:
    dep_id = create(desk)["deployment_id"]
    url = f"/v1/deployments/{dep_id}"

    for _ in range(2):
        paused = desk.post(f"{url}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert {schedule(TENANT_A, dep_id, s)["State"] for s in ("GOOG", "AAPL")} == {"DISABLED"}  # type: ignore[index]

    for _ in range(2):
        assert desk.post(f"{url}/resume").json()["status"] == "active"
    assert {schedule(TENANT_A, dep_id, s)["State"] for s in ("GOOG", "AAPL")} == {"ENABLED"}  # type: ignore[index]

    for _ in range(2):
        stopped = desk.post(f"{url}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert schedule(TENANT_A, dep_id, "GOOG") is None and schedule(TENANT_A, dep_id, "AAPL") is None
    assert desk.client.delete(url, headers=desk.as_()).json()["status"] == "stopped"

    for move in ("pause", "resume"):
        conflict = desk.post(f"{url}/{move}")
        assert conflict.status_code == 409 and conflict.json()["type"] == "conflict"
    actions = [e.action for e in AuditRepository().list(TENANT_A) if e.subject == dep_id]
    assert actions == ["deployment.created", "deployment.paused", "deployment.active", "deployment.stopped"]


def test_status_shows_the_latest_evaluation_and_the_schedule_per_symbol(desk: Api) -> None:
    dep_id = create(desk)["deployment_id"]
    evaluations = EvaluationRepository()
    for minutes, action in ((1, SignalAction.HOLD), (2, SignalAction.BUY)):
        evaluation = Evaluation(
            tenant_id=TENANT_A,
            deployment_id=dep_id,
            symbol="GOOG",
            evaluated_at=T0 + timedelta(minutes=minutes),
            bar_time=T0 + timedelta(minutes=minutes - 1),
            action=action,
            signal_id=f"sig-{minutes}",
            reasons={"rules": {"entry": True}, "close": Decimal("101.5")},
        )
        evaluations.put(evaluation)
    status = desk.get(f"/v1/deployments/{dep_id}/status")
    assert status.status_code == 200
    view = status.json()
    assert view["deployment"]["deployment_id"] == dep_id
    by_symbol = {s["symbol"]: s for s in view["symbols"]}
    goog = by_symbol["GOOG"]
    assert goog["schedule_state"] == "ENABLED"
    assert goog["latest_evaluation"]["action"] == "buy" and goog["latest_evaluation"]["signal_id"] == "sig-2"
    assert goog["latest_evaluation"]["reasons"]["rules"] == {"entry": True}
    assert goog["latest_evaluation"]["bar_time"].startswith("2026-01-05T14:31:00")
    assert by_symbol["AAPL"]["latest_evaluation"] is None

    desk.post(f"/v1/deployments/{dep_id}/stop")
    after = desk.get(f"/v1/deployments/{dep_id}/status").json()
    assert {s["schedule_state"] for s in after["symbols"]} == {"absent"}


# --- tenants are walls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "/status"), ("post", "/pause"), ("post", "/resume"), ("post", "/stop"), ("delete", "")],
)
def test_another_tenant_s_deployment_is_not_found(desk: Api, method: str, suffix: str) -> None:
    dep_id = create(desk)["deployment_id"]
    response = desk.client.request(method.upper(), f"/v1/deployments/{dep_id}{suffix}", headers=desk.as_(TENANT_B))
    assert response.status_code == 404 and response.json()["detail"] == f"deployment {dep_id!r} not found"
    missing = desk.client.request(method.upper(), f"/v1/deployments/dep_nope{suffix}", headers=desk.as_())
    assert missing.status_code == 404
    assert desk.get(f"/v1/deployments/{dep_id}").json()["status"] == "active"  # untouched


def test_unauthenticated_is_401(desk: Api) -> None:
    assert desk.client.get("/v1/deployments").status_code == 401


def test_a_change_racing_another_is_a_conflict_not_a_lost_update(desk: Api) -> None:
    from tradeflow.domain import Deployment
    from tradeflow.scheduling.management import DeploymentConflict, DeploymentManager

    dep_id = create(desk)["deployment_id"]
    manager = DeploymentManager()
    stale = manager.get(TENANT_A, dep_id)
    assert isinstance(stale, Deployment)
    desk.post(f"/v1/deployments/{dep_id}/stop")
    with pytest.raises(DeploymentConflict):
        manager.pause(stale, "user:racer")  # read as active, but stopped meanwhile
    assert desk.get(f"/v1/deployments/{dep_id}").json()["status"] == "stopped"
    assert schedule(TENANT_A, dep_id, "GOOG") is None


def test_filtering_by_an_unknown_or_foreign_account_is_404(api: Api) -> None:
    for tenant in (TENANT_A, TENANT_B):
        response = api.get("/v1/deployments?account_id=no-such-account", tenant=tenant)
        assert response.status_code == 404 and response.json()["type"] == "not_found"
