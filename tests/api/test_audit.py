"""`audit`: the tenant's audit events, newest first, by time range, action prefix and subject, in
full pages; another tenant's events are never visible."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tradeflow.storage.audit import AuditRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import T0


@pytest.fixture
def trail(api: Api) -> Api:
    audit = AuditRepository()
    for i in range(10):
        action = ("order.submitted", "signal.rejected")[i % 2]
        audit.record(audit.event(TENANT_A, T0 + timedelta(minutes=i), "risk", action, f"subj-{i % 3}", {"i": i}))
    audit.record(audit.event(TENANT_B, T0, "risk", "order.submitted", "subj-0", {"i": 99}))
    return api


def events(api: Api, tenant: str = TENANT_A, **params: Any) -> list[int]:
    response = api.get("/v1/audit", tenant, params=params)
    assert response.status_code == 200, response.json()
    return [e["details"]["i"] for e in response.json()["items"]]


def test_events_are_newest_first_and_tenant_scoped(trail: Api) -> None:
    assert events(trail) == list(range(9, -1, -1))
    assert events(trail, TENANT_B) == [99]
    first = trail.get("/v1/audit").json()["items"][0]
    assert first["action"] == "signal.rejected" and first["actor"] == "risk" and first["tenant_id"] == TENANT_A
    assert first["ts"] == "2026-01-05T14:39:00.000000Z"


def test_time_range_start_inclusive_end_exclusive(trail: Api) -> None:
    start, end = (T0 + timedelta(minutes=2)).isoformat(), (T0 + timedelta(minutes=5)).isoformat()
    assert events(trail, start=start, end=end) == [4, 3, 2]
    assert events(trail, start=start) == [9, 8, 7, 6, 5, 4, 3, 2]
    assert events(trail, end=end) == [4, 3, 2, 1, 0]


def test_action_prefix_and_subject_filters(trail: Api) -> None:
    assert events(trail, action="order.") == [8, 6, 4, 2, 0]
    assert events(trail, action="signal.rejected", subject="subj-0") == [9, 3]
    assert events(trail, subject="subj-2") == [8, 5, 2]
    assert events(trail, action="nothing.") == []


def test_pages_are_full_and_follow_the_filters(trail: Api) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"action": "order.", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = trail.get("/v1/audit", params=params).json()
        assert len(page["items"]) == 2 or page["next_cursor"] is None
        seen += [e["details"]["i"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [8, 6, 4, 2, 0]
    cursor = trail.get("/v1/audit", params={"limit": 3}).json()["next_cursor"]
    refused = trail.get("/v1/audit", TENANT_B, params={"cursor": cursor})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "query.start"),
        ({"start": "2026-01-05T14:30:00"}, "query.start"),  # no timezone
        ({"start": "2026-01-05T15:00:00Z", "end": "2026-01-05T14:00:00Z"}, "query.end"),
        ({"action": ""}, "query.action"),
        ({"subject": "x" * 257}, "query.subject"),
        ({"limit": 501}, "query.limit"),
        ({"cursor": "not-a-cursor!"}, "query.cursor"),
    ],
)
def test_invalid_queries_are_422_naming_the_field(trail: Api, params: dict[str, Any], field: str) -> None:
    response = trail.get("/v1/audit", params=params)
    assert response.status_code == 422 and field in [e["field"] for e in response.json()["errors"]]


def test_control_changes_made_through_the_api_are_in_the_trail(api: Api) -> None:
    api.post("/v1/controls/kill-switch", json={"active": True, "reason": "drill"})
    [event] = api.get("/v1/audit", params={"action": "control."}).json()["items"]
    assert event["action"] == "control.kill_switch.activated" and event["details"]["reason"] == "drill"
