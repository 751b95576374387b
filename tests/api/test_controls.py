"""`controls`: the tenant's kill switch and per-deployment pause (users), the global halt and tenant
disable (platform admins only; 403 for others); every change audited; and a switch flipped through the
API stops the very next risk decision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tradeflow.domain import SignalOutcome
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.signals import SignalRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import DEPLOYMENT, T0, account, deliver, deployment, emit, make_signal, receive


def admin(api: Api, tenant: str = TENANT_A) -> dict[str, str]:
    return api.as_(tenant, "ops-1", roles=("admin",))


def active(api: Api, tenant: str = TENANT_A) -> dict[str, Any]:
    response = api.get("/v1/controls", tenant)
    assert response.status_code == 200, response.json()
    listed: dict[str, Any] = response.json()
    return listed


def risk_outcome(at_minutes: int, symbol: str = "GOOG") -> Any:
    """Deliver one buy signal to the risk function as the queue would, and read back its outcome."""
    signal = make_signal(symbol, "buy", at=T0 + timedelta(minutes=at_minutes))
    emit(signal)
    messages = receive("signals")
    assert len(messages) == 1
    assert deliver("risk", "signals", messages) == {"batchItemFailures": []}
    record = SignalRepository().get(TENANT_A, signal.signal_id)
    assert record is not None
    return record


def test_the_kill_switch_stops_the_very_next_risk_decision(api: Api) -> None:
    account(TENANT_A)
    deployment(TENANT_A, symbols=("GOOG", "AAPL"))
    assert risk_outcome(0).outcome is SignalOutcome.APPROVED

    on = api.post("/v1/controls/kill-switch", json={"active": True, "reason": "market looks wrong"})
    assert on.status_code == 200 and on.json()["active"] is True
    halted = risk_outcome(1)
    assert halted.outcome is SignalOutcome.REJECTED
    assert halted.reason == "trading control kill_switch is active: market looks wrong"

    api.post("/v1/controls/kill-switch", json={"active": False, "reason": "all clear"})
    after = risk_outcome(2, "AAPL")  # GOOG is already long
    assert after.outcome is SignalOutcome.APPROVED, after.reason


def test_a_deployment_pause_stops_its_next_risk_decision(api: Api) -> None:
    account(TENANT_A)
    deployment(TENANT_A, symbols=("GOOG",))
    paused = api.post(f"/v1/controls/deployments/{DEPLOYMENT}/pause", json={"active": True, "reason": "check it"})
    assert paused.status_code == 200
    assert paused.json()["scope"] == "deployment_paused" and paused.json()["target"] == DEPLOYMENT
    record = risk_outcome(0)
    assert record.outcome is SignalOutcome.REJECTED and record.reason.startswith("trading control deployment_paused")


def test_an_account_halt_stops_that_accounts_decisions_until_released(api: Api) -> None:
    from tradeflow.accounts.halts import halt_account

    account(TENANT_A)
    deployment(TENANT_A, symbols=("GOOG", "AAPL"))
    halt_account(TENANT_A, "paper-1", "reconcile: position GOOG differs (ledger 0, broker 10)", actor="reconcile")
    halted = risk_outcome(0)
    assert halted.outcome is SignalOutcome.REJECTED
    assert halted.reason == (
        "trading control account_halted is active: reconcile: position GOOG differs (ledger 0, broker 10)"
    )
    assert api.get("/v1/accounts/paper-1").json()["halted"].startswith("reconcile: position GOOG")
    assert api.post("/v1/controls/accounts/nope/halt", json={"active": False}).status_code == 404
    released = api.post("/v1/controls/accounts/paper-1/halt", json={"active": False, "reason": "broker fixed"})
    assert released.status_code == 200 and released.json()["scope"] == "account_halted"
    assert api.get("/v1/accounts/paper-1").json()["halted"] is None
    assert risk_outcome(1, "AAPL").outcome is SignalOutcome.APPROVED


def test_the_kill_switch_is_listed_and_audited(api: Api) -> None:
    assert active(api) == {"items": [], "next_cursor": None, "trading_halted": False, "global_halt": None}
    body = api.post("/v1/controls/kill-switch", json={"active": True, "reason": "stop"}).json()
    assert body["tenant_id"] == TENANT_A and body["scope"] == "kill_switch" and body["set_by"] == "user:user-1"

    listed = active(api)
    assert listed["trading_halted"] is True and [c["scope"] for c in listed["items"]] == ["kill_switch"]
    assert active(api, TENANT_B)["items"] == []  # tenants are walls

    api.post("/v1/controls/kill-switch", json={"active": False})
    assert active(api)["items"] == [] and active(api)["trading_halted"] is False
    trail = [(e.action, e.subject, e.actor) for e in AuditRepository().list(TENANT_A)]
    assert trail == [
        ("control.kill_switch.activated", "kill_switch", "user:user-1"),
        ("control.kill_switch.released", "kill_switch", "user:user-1"),
    ]


def test_pausing_another_tenant_s_deployment_is_not_found(api: Api) -> None:
    deployment(TENANT_A, symbols=("GOOG",))
    for tenant, dep in ((TENANT_B, DEPLOYMENT), (TENANT_A, "dep-missing")):
        response = api.post(f"/v1/controls/deployments/{dep}/pause", tenant, json={"active": True})
        assert response.status_code == 404 and response.json()["detail"] == f"deployment {dep!r} not found"
    assert active(api)["items"] == [] and AuditRepository().list(TENANT_B) == []


def test_the_controls_list_pages(api: Api) -> None:
    for i in range(3):
        deployment(TENANT_A, deployment_id=f"dep-{i}", symbols=("GOOG",))
        api.post(f"/v1/controls/deployments/dep-{i}/pause", json={"active": True})
    api.post("/v1/controls/deployments/dep-1/pause", json={"active": False})  # inactive: not listed
    first = api.get("/v1/controls", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.get("/v1/controls", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert {first["items"][0]["target"], second["items"][0]["target"]} == {"dep-0", "dep-2"}
    assert second["next_cursor"] is None and second["trading_halted"] is False


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/controls/kill-switch", {}, "body.active"),
        ("/v1/controls/kill-switch", {"active": "maybe"}, "body.active"),
        ("/v1/controls/kill-switch", {"active": True, "reason": "x" * 501}, "body.reason"),
        ("/v1/controls/kill-switch", {"active": True, "why": "x"}, "body.why"),
        ("/v1/controls/deployments/dep-1/pause", {"reason": "x"}, "body.active"),
    ],
)
def test_invalid_changes_are_422_naming_the_field(api: Api, path: str, payload: dict[str, Any], field: str) -> None:
    response = api.post(path, json=payload)
    assert response.status_code == 422 and field in [e["field"] for e in response.json()["errors"]]


# --- admins ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/controls/global-halt"),
        ("POST", f"/v1/controls/tenants/{TENANT_B}/disable"),
        ("GET", f"/v1/controls/tenants/{TENANT_B}"),
    ],
)
def test_admin_routes_are_403_for_users(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path, headers=api.as_(), json={"active": True})
    assert response.status_code == 403 and response.json()["type"] == "forbidden"
    assert active(api, TENANT_B)["items"] == []


def test_the_global_halt_stops_every_tenant(api: Api) -> None:
    halt = api.client.post(
        "/v1/controls/global-halt", headers=admin(api), json={"active": True, "reason": "exchange down"}
    )
    assert halt.status_code == 200 and halt.json()["tenant_id"] == GLOBAL_TENANT
    for tenant in (TENANT_A, TENANT_B):
        listed = active(api, tenant)
        assert listed["trading_halted"] is True and listed["global_halt"]["reason"] == "exchange down"
    [event] = AuditRepository().list(GLOBAL_TENANT)
    assert (event.action, event.actor) == ("control.global_halt.activated", "user:ops-1")

    account(TENANT_A)
    deployment(TENANT_A, symbols=("GOOG",))
    record = risk_outcome(0)
    assert record.outcome is SignalOutcome.REJECTED and record.reason.endswith("global_halt is active: exchange down")

    api.client.post("/v1/controls/global-halt", headers=admin(api), json={"active": False})
    assert active(api)["global_halt"] is None and active(api)["trading_halted"] is False


def test_an_admin_disables_any_tenant(api: Api) -> None:
    url = f"/v1/controls/tenants/{TENANT_B}/disable"
    response = api.client.post(url, headers=admin(api), json={"active": True, "reason": "unpaid"})
    assert response.status_code == 200 and response.json()["tenant_id"] == TENANT_B
    listed = active(api, TENANT_B)
    assert listed["trading_halted"] is True and [c["scope"] for c in listed["items"]] == ["tenant_disabled"]
    assert active(api, TENANT_A)["trading_halted"] is False
    # audited in the tenant's trail and in the platform's
    for trail in (TENANT_B, GLOBAL_TENANT):
        [event] = AuditRepository().list(trail)
        assert (event.action, event.subject, event.details["reason"]) == (
            "control.tenant_disabled.activated",
            TENANT_B,
            "unpaid",
        )
    admin_view = api.client.get(f"/v1/controls/tenants/{TENANT_B}", headers=admin(api)).json()
    assert [c["scope"] for c in admin_view["items"]] == ["tenant_disabled"]
    bad = api.client.post("/v1/controls/tenants/bad%20tenant/disable", headers=admin(api), json={"active": True})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.tenant_id"
