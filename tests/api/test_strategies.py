"""`/v1/strategies`: create, list (paginated, filtered), get, replace (optimistic concurrency), delete,
validate and builtins; 422s naming the field, 409s for duplicate names and stale versions, and the
tenant wall (another tenant's strategy is not found, for reading, replacing and deleting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradeflow.local.lambdas import repo_root
from tradeflow.storage.audit import AuditRepository

from apiclient import TENANT_A, TENANT_B, Api

EXAMPLES = repo_root() / "examples" / "strategies"


def _spec(name: str = "rsi_dip") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def _create(api: Api, tenant: str = TENANT_A, **body: Any) -> dict[str, Any]:
    payload = {"name": "golden cross", "strategy": "sma_cross", "params": {"fast": 50, "slow": 200}} | body
    response = api.post("/v1/strategies", tenant, json=payload)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_create_and_get_a_builtin_strategy(api: Api) -> None:
    response = api.post(
        "/v1/strategies",
        json={"name": "  golden   cross ", "strategy": "sma_cross", "params": {"fast": 50, "slow": 200}},
    )
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/v1/strategies/{created['strategy_id']}"
    assert created["name"] == "golden cross" and created["strategy"] == "sma_cross"
    assert created["params"] == {"fast": 50, "slow": 200} and created["spec"] is None
    assert created["warmup"] == 201 and created["version"] == 1 and created["created_by"] == "user:user-1"
    got = api.get(f"/v1/strategies/{created['strategy_id']}").json()
    assert got == created
    actions = [e.action for e in AuditRepository().list(TENANT_A)]
    assert actions == ["strategy.created"]


def test_create_a_rule_spec_strategy_keeps_the_spec_as_given(api: Api) -> None:
    spec = _spec()
    created = _create(api, name="dip", strategy=None, params=None, spec=spec)
    assert created["strategy"] == "rules" and created["params"] is None
    assert created["spec"] == spec and created["warmup"] > 200
    assert api.get(f"/v1/strategies/{created['strategy_id']}").json()["spec"] == spec


def test_invalid_params_name_the_field(api: Api) -> None:
    bad = {"name": "x", "strategy": "sma_cross", "params": {"fast": 0}}
    assert _fields(api.post("/v1/strategies", json=bad)) == ["body.params.fast"]
    model_level = {"name": "x", "strategy": "sma_cross", "params": {"fast": 30, "slow": 10}}
    response = api.post("/v1/strategies", json=model_level)
    assert _fields(response) == ["body.params"] and "fast must be smaller than slow" in response.text
    unknown = {"name": "x", "strategy": "sma_cross", "params": {"fats": 3}}
    assert _fields(api.post("/v1/strategies", json=unknown)) == ["body.params.fats"]


def test_invalid_specs_and_shapes_name_the_field(api: Api) -> None:
    spec = _spec()
    spec["entry"]["all"][0]["op"] = "=="
    assert _fields(api.post("/v1/strategies", json={"name": "x", "spec": spec})) == ["body.spec.entry.all.0.op"]
    assert _fields(api.post("/v1/strategies", json={"name": "x", "strategy": "nope"})) == ["body.strategy"]
    assert _fields(api.post("/v1/strategies", json={"name": "x"})) == ["body.strategy"]
    assert _fields(api.post("/v1/strategies", json={"name": "x", "strategy": "rules", "params": {}})) == ["body.spec"]
    both = {"name": "x", "spec": _spec(), "params": {"fast": 3}}
    assert _fields(api.post("/v1/strategies", json=both)) == ["body.params"]
    assert _fields(api.post("/v1/strategies", json={"name": "", "strategy": "sma_cross"})) == ["body.name"]
    assert _fields(api.post("/v1/strategies", json={"name": "x", "strategy": "sma_cross", "extra": 1})) == [
        "body.extra"
    ]


def test_names_are_unique_per_tenant(api: Api) -> None:
    _create(api)
    duplicate = api.post("/v1/strategies", json={"name": "Golden  Cross", "strategy": "sma_cross"})
    assert duplicate.status_code == 409 and duplicate.json()["type"] == "conflict.duplicate_name"
    _create(api, TENANT_B)  # another tenant may use the name


def test_replace_with_optimistic_concurrency(api: Api) -> None:
    created = _create(api)
    path = f"/v1/strategies/{created['strategy_id']}"
    body = {"name": "fast cross", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "version": 1}
    replaced = api.client.put(path, json=body, headers=api.as_())
    assert replaced.status_code == 200, replaced.text
    out = replaced.json()
    assert out["version"] == 2 and out["name"] == "fast cross" and out["warmup"] == 21
    assert out["created_at"] == created["created_at"]
    stale = api.client.put(path, json=body, headers=api.as_())
    assert stale.status_code == 409 and stale.json()["type"] == "conflict.version"
    assert stale.json()["errors"][0]["field"] == "body.version"
    # the old name is free again; the new one is taken
    _create(api, name="golden cross")
    taken = api.client.put(path, json=body | {"version": 2, "name": "golden cross"}, headers=api.as_())
    assert taken.status_code == 409 and taken.json()["type"] == "conflict.duplicate_name"
    # full replace: a rule spec replaces the params
    to_spec = {"name": "fast cross", "spec": _spec(), "version": 2}
    out = api.client.put(path, json=to_spec, headers=api.as_()).json()
    assert out["strategy"] == "rules" and out["params"] is None and out["version"] == 3
    invalid = api.client.put(path, json=to_spec | {"version": 3, "spec": {"name": "x"}}, headers=api.as_())
    assert _fields(invalid) == ["body.spec.entry"]
    missing_version = api.client.put(path, json={"name": "x", "strategy": "sma_cross"}, headers=api.as_())
    assert _fields(missing_version) == ["body.version"]


def test_delete(api: Api) -> None:
    created = _create(api)
    path = f"/v1/strategies/{created['strategy_id']}"
    assert api.client.delete(path, headers=api.as_()).status_code == 204
    assert api.get(path).status_code == 404
    assert api.client.delete(path, headers=api.as_()).status_code == 404
    _create(api)  # the name is free again


def test_another_tenants_strategy_is_not_found(api: Api) -> None:
    created = _create(api)
    path = f"/v1/strategies/{created['strategy_id']}"
    foreign = api.get(path, TENANT_B)
    assert foreign.status_code == 404
    assert foreign.json()["detail"] == api.get("/v1/strategies/stg_missing", TENANT_B).json()["detail"].replace(
        "stg_missing", created["strategy_id"]
    )
    body = {"name": "mine now", "strategy": "sma_cross", "version": 1}
    assert api.client.put(path, json=body, headers=api.as_(TENANT_B)).status_code == 404
    assert api.client.delete(path, headers=api.as_(TENANT_B)).status_code == 404
    assert api.get(path).json()["version"] == 1
    assert api.get("/v1/strategies", TENANT_B).json() == {"items": [], "next_cursor": None}


def test_list_is_paginated_and_filtered(api: Api) -> None:
    ids = [_create(api, name=f"cross {i}")["strategy_id"] for i in range(5)]
    ids.append(_create(api, name="dip", strategy=None, params=None, spec=_spec())["strategy_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get("/v1/strategies", params=params).json()
        seen.extend(s["strategy_id"] for s in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids  # oldest first, each once
    rules = api.get("/v1/strategies", params={"strategy": "rules"}).json()["items"]
    assert [s["name"] for s in rules] == ["dip"]
    named = api.get("/v1/strategies", params={"name": "CROSS 3"}).json()["items"]
    assert [s["name"] for s in named] == ["cross 3"]
    assert _fields(api.get("/v1/strategies", params={"limit": 0})) == ["query.limit"]
    assert _fields(api.get("/v1/strategies", params={"cursor": "garbage"})) == ["query.cursor"]


def test_validate_returns_warmup_plan_and_filled_params(api: Api) -> None:
    out = api.post("/v1/strategies/validate", json={"strategy": "sma_cross", "params": {"fast": 5}}).json()
    assert out == {
        "strategy": "sma_cross",
        "warmup": 31,
        "plan": None,
        "params": {"fast": 5, "slow": 30, "atr_period": 14},
    }
    spec = api.post("/v1/strategies/validate", json={"spec": _spec()}).json()
    assert spec["strategy"] == "rules" and spec["plan"]["stop_loss"] == {"percent": 8.0, "atr": None}
    assert spec["params"]["atr_period"] == 14 and spec["params"]["entry"]["all"][0]["params"] == {
        "period": 14,
        "source": "close",
    }
    assert _fields(api.post("/v1/strategies/validate", json={"strategy": "sma_cross", "params": {"slow": 1}})) == [
        "body.params.slow"
    ]
    assert api.get("/v1/strategies").json()["items"] == []  # nothing saved


def test_builtins_list_parameter_schemas(api: Api) -> None:
    builtins = {b["name"]: b for b in api.get("/v1/strategies/builtins").json()}
    assert {"sma_cross", "rules", "pro", "macd_trend"} <= set(builtins)
    schema = builtins["sma_cross"]["params_schema"]
    assert schema["properties"]["fast"]["default"] == 10 and builtins["sma_cross"]["description"]


def test_every_route_needs_a_token(api: Api) -> None:
    for method, path in [("get", "/v1/strategies"), ("get", "/v1/strategies/builtins"), ("get", "/v1/strategies/x")]:
        assert getattr(api.client, method)(path).status_code == 401


def test_examples_all_validate(api: Api) -> None:
    for path in sorted(Path(EXAMPLES).glob("*.json")):
        response = api.post("/v1/strategies/validate", json={"spec": json.loads(path.read_text())})
        assert response.status_code == 200, (path.name, response.text)
