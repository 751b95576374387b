"""The tenant wall, generated from the app's own routes (design rule 5).

Every route with a path parameter is found by walking the app (its OpenAPI schema, cross-checked against
the routers' own route tables and the app's own routes, so that a route hidden from the docs cannot slip
by) and must appear in
`WALL`, a registry mapping the path template to:

- `params`: a factory that makes tenant A's resources *through the API* (market bars excepted: only the
  streamer writes them) and returns the path parameters naming them;
- `witness`: the GET, as tenant A, whose answer must be the same before and after tenant B's attempts;
- `bodies`: a valid body per method that needs one, so B's attempt reaches the route (an invalid body
  would be refused with 422 before the wall is ever tested).

For each route, tenant B — a plain user and a platform admin (the admin role opens no tenant's
resources) — calls every method the route supports on A's resource: every answer is 404 (never 403,
never 2xx), is the very answer B gets for an id that never existed (the wall reveals nothing, not even
existence), and carries none of A's data. Afterwards A's witness and A's audit trail are unchanged, and
the same requests by A itself do reach the resource (so B's 404s come from the wall, not a dead route).
`test_every_route_with_a_path_parameter_is_walled` fails as soon as a route appears that `WALL` does
not cover.

The dashboard's page and files (`/`, `/dashboard/...`) are not API operations and hold no tenant's data:
they are left out of the comparison like the docs pages (`DASHBOARD_PATHS`).

The documented exception: the platform-admin routes that take a tenant in the path
(`/v1/controls/tenants/{tenant_id}...`) answer 403 to every non-admin and act on the named tenant only
for an admin, as `tradeflow.api.routers.controls` documents. Lists: nothing of A's ever appears in any of
B's lists, even where B names an account id A uses.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import pytest

from tradeflow.api.app import API_PREFIX, ROUTERS
from tradeflow.dashboard import serve as dashboard
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.storage.audit import AuditRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import T0, bars, deliver, receive

CANARY = "acme-canary-7c1f"  # in every name A gives its resources: must never reach B
METHODS = ("get", "put", "post", "delete", "patch")


# -- tenant A's world, made through the API ------------------------------------------------------


class World:
    """Tenant A's resources, each made on first use (so a route's test makes only what it needs).

    `tenant` and `suffix` (appended to ids and names) let the fuzz tests make several worlds side by side."""

    def __init__(self, api: Api, tenant: str = TENANT_A, suffix: str = "") -> None:
        self.api, self.tenant, self.suffix = api, tenant, suffix

    def _post(self, path: str, body: dict[str, Any], *statuses: int) -> dict[str, Any]:
        return self._ok(self.api.post(path, self.tenant, json=body), *statuses)

    def _ok(self, response: Any, *statuses: int) -> dict[str, Any]:
        assert response.status_code in statuses, response.text
        body: dict[str, Any] = response.json()
        return body

    @cached_property
    def market(self) -> str:
        bars(self.tenant, "GOOG", [100, 101, 102], start=T0 - timedelta(minutes=3))  # the streamer's job: no API
        return "GOOG"

    @cached_property
    def account(self) -> dict[str, Any]:
        body = {"kind": "paper", "account_id": f"acme-main{self.suffix}", "name": f"{CANARY} main",
                "starting_cash": "10000", "fill_model": "last_price"}  # fmt: skip
        return self._post("/v1/accounts", body, 201)

    @cached_property
    def broker_account(self) -> dict[str, Any]:
        body = {"kind": "alpaca", "account_id": f"acme-alpaca{self.suffix}", "name": f"{CANARY} alpaca",
                "api_key_id": "PKACME0000000000KEY1", "secret_key": "a" * 40}  # fmt: skip
        return self._post("/v1/accounts", body, 201)

    @cached_property
    def strategy(self) -> dict[str, Any]:
        body = {"name": f"{CANARY} cross{self.suffix}", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}
        return self._post("/v1/strategies", body, 201)

    @cached_property
    def backtest(self) -> dict[str, Any]:
        body = {"strategy_id": self.strategy["strategy_id"], "datasets": ["GOOG"]}
        return self._post("/v1/backtests", body, 201, 202)

    @cached_property
    def deployment(self) -> dict[str, Any]:
        body = {"name": f"{CANARY} deployment", "strategy_id": self.strategy["strategy_id"], "symbols": ["GOOG"],
                "account_id": self.account["account_id"]}  # fmt: skip
        return self._post("/v1/deployments", body, 201)

    def _place(self, **terms: str) -> str:
        self.market  # noqa: B018  (a reference price)
        body = {"account_id": self.account["account_id"], "symbol": "GOOG", "side": "buy", "quantity": "5",
                "client_tag": CANARY, **terms}  # fmt: skip
        coid: str = self._post("/v1/orders", body, 202)["client_order_id"]
        return coid

    @cached_property
    def position(self) -> dict[str, str]:
        """A filled order: a position, fills and ledger entries (made before any pending order)."""
        coid = self._place()
        deliver("risk", "signals", receive("signals"))
        deliver("execution", "orders", receive("orders"))
        assert self.api.get(f"/v1/orders/{coid}", self.tenant).json()["status"] == "filled"
        return {"account_id": self.account["account_id"], "symbol": "GOOG", "client_order_id": coid}

    @cached_property
    def pending_order(self) -> str:
        """An order risk has not decided yet: cancellable, so a cancel that crossed the wall would show."""
        return self._place(type="limit", limit_price="90", time_in_force="gtc")

    @cached_property
    def kill_switch(self) -> dict[str, Any]:
        body = {"active": True, "reason": f"{CANARY} stop"}
        return self._post("/v1/controls/kill-switch", body, 200)

    def everything(self) -> None:
        for made in ("position", "pending_order", "broker_account", "backtest", "deployment", "kill_switch"):
            getattr(self, made)

    def ids(self) -> set[str]:
        """Every identifier of A's made so far (with the canary): none may appear in an answer to B."""
        found = {CANARY}
        for name, key in (("account", "account_id"), ("broker_account", "account_id"), ("strategy", "strategy_id"),
                          ("backtest", "job_id"), ("deployment", "deployment_id")):  # fmt: skip
            if name in self.__dict__:
                found.add(self.__dict__[name][key])
        if "position" in self.__dict__:
            found.add(self.position["client_order_id"])
        if "pending_order" in self.__dict__:
            found.add(self.pending_order)
        found.discard("acme-main")  # B opens an account of the same id in the list test: its own
        return found


# -- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Walled:
    params: Callable[[World], dict[str, str]]
    witness: str | None = None  # A's GET to compare before/after (None: the route itself, a GET)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)


def _strategy(w: World) -> dict[str, str]:
    return {"strategy_id": w.strategy["strategy_id"]}


def _deployment(w: World) -> dict[str, str]:
    return {"deployment_id": w.deployment["deployment_id"]}


def _account(w: World) -> dict[str, str]:
    return {"account_id": w.account["account_id"]}


def _order(w: World) -> dict[str, str]:
    return {"client_order_id": w.pending_order}


def _position(w: World) -> dict[str, str]:
    return {"account_id": w.position["account_id"], "symbol": w.position["symbol"]}


def _market(w: World) -> dict[str, str]:
    return {"symbol": w.market}


WALL: dict[str, Walled] = {
    "/v1/strategies/{strategy_id}": Walled(
        _strategy,
        bodies={"put": {"name": "taken over", "strategy": "sma_cross", "params": {"fast": 3, "slow": 9}, "version": 1}},
    ),
    "/v1/backtests/{job_id}": Walled(lambda w: {"job_id": w.backtest["job_id"]}),
    "/v1/deployments/{deployment_id}": Walled(_deployment),
    "/v1/deployments/{deployment_id}/status": Walled(_deployment),
    "/v1/deployments/{deployment_id}/pause": Walled(_deployment, witness="/v1/deployments/{deployment_id}/status"),
    "/v1/deployments/{deployment_id}/resume": Walled(_deployment, witness="/v1/deployments/{deployment_id}/status"),
    "/v1/deployments/{deployment_id}/stop": Walled(_deployment, witness="/v1/deployments/{deployment_id}/status"),
    "/v1/orders/{client_order_id}": Walled(_order),
    "/v1/orders/{client_order_id}/cancel": Walled(_order, witness="/v1/orders/{client_order_id}"),
    "/v1/positions/{account_id}/{symbol}": Walled(_position),
    "/v1/portfolio/{account_id}": Walled(_position),
    "/v1/portfolio/{account_id}/equity": Walled(_position),
    "/v1/accounts/{account_id}": Walled(_account),
    "/v1/accounts/{account_id}/reset": Walled(_position, witness="/v1/portfolio/{account_id}"),
    "/v1/accounts/{account_id}/credentials": Walled(
        lambda w: {"account_id": w.broker_account["account_id"]},
        witness="/v1/accounts/{account_id}",
        bodies={"put": {"kind": "alpaca", "api_key_id": "PKGLOBEX000000000KEY", "secret_key": "b" * 40}},
    ),
    "/v1/controls/deployments/{deployment_id}/pause": Walled(
        _deployment, witness="/v1/controls", bodies={"post": {"active": True, "reason": "globex was here"}}
    ),
    "/v1/controls/accounts/{account_id}/halt": Walled(
        _account, witness="/v1/accounts/{account_id}", bodies={"post": {"active": True, "reason": "globex was here"}}
    ),
    "/v1/market/{symbol}/quote": Walled(_market),
    "/v1/market/{symbol}/bars": Walled(_market),
}

# the dashboard's page and static files (tradeflow.dashboard.serve): no token, no tenant's data, not API
# operations (so not in the schema); tests/api/test_dashboard_serving.py checks what they serve
DASHBOARD_PATHS = {re.sub(r"\{(\w+):\w+\}", r"{\1}", path) for path in dashboard.PATHS}

# platform-admin routes naming a tenant: the documented exception (test_admin_routes_naming_a_tenant)
ADMIN_TENANT_ROUTES = {"/v1/controls/tenants/{tenant_id}", "/v1/controls/tenants/{tenant_id}/disable"}


# -- discovering the routes ------------------------------------------------------------------------


def _schema(api: Api) -> dict[str, Any]:
    schema: dict[str, Any] = api.client.get("/openapi.json").json()
    return schema


def _router_paths(api: Api) -> dict[str, set[str]]:
    """Every route of the app, docs or not: the routers it mounts, from their own tables, and any route
    added to the app itself (its docs pages excepted)."""
    found: list[tuple[str, Any]] = []
    for name in ROUTERS:
        found += [
            (API_PREFIX, route) for route in importlib.import_module(f"tradeflow.api.routers.{name}").router.routes
        ]
    found += [("", route) for route in api.client.app.routes if getattr(route, "path", None)]  # type: ignore[attr-defined]
    paths: dict[str, set[str]] = {}
    for prefix, route in found:
        template = prefix + re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {symbol:path} -> {symbol}
        if template in ("/openapi.json", "/docs", "/docs/oauth2-redirect") or template in DASHBOARD_PATHS:
            continue
        paths.setdefault(template, set()).update(m.lower() for m in getattr(route, "methods", ()) or ())
    return paths


def _operations(api: Api) -> dict[str, dict[str, Any]]:
    return {path: {m: op for m, op in ops.items() if m in METHODS} for path, ops in _schema(api)["paths"].items()}


def _templated(paths: dict[str, Any]) -> set[str]:
    return {p for p in paths if "{" in p}


def test_every_route_with_a_path_parameter_is_walled(api: Api) -> None:
    documented, routed = _operations(api), _router_paths(api)
    assert {p: set(ops) for p, ops in documented.items()} == {p: ms - {"head"} for p, ms in routed.items()}, (
        "a route is missing from the OpenAPI schema (or the other way round)"
    )
    templated = _templated(routed)
    uncovered = templated - set(WALL) - ADMIN_TENANT_ROUTES
    assert not uncovered, f"routes with a path parameter but no entry in WALL: {sorted(uncovered)}"
    stale = set(WALL) - templated
    assert not stale, f"WALL entries for routes that no longer exist: {sorted(stale)}"
    for path, walled in WALL.items():
        for method, op in documented[path].items():
            if op.get("requestBody", {}).get("required"):
                assert method in walled.bodies, f"{method.upper()} {path} needs a body in WALL"


# -- the wall ----------------------------------------------------------------------------------------


def _fill(template: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], template)


def _ghost(value: str) -> str:
    """An id of the same shape that names nothing."""
    return value[:-1] + ("y" if value[-1] != "y" else "z")


def _witness(api: Api, path: str) -> Any:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _audit(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _witness(api, "/v1/audit?limit=500")["items"]
    return items


def _problem(response: Any, swap: dict[str, str]) -> dict[str, Any]:
    """The answer as B sees it, with `swap`'s ids renamed and the request id left out."""
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    text = repr(body)
    for old, new in swap.items():
        text = text.replace(old, new)
    return {"status": response.status_code, "text": text}


@pytest.mark.parametrize("template", sorted(WALL))
def test_another_tenant_gets_404_for_every_method_and_changes_nothing(api: Api, template: str) -> None:
    walled = WALL[template]
    world = World(api)
    params = walled.params(world)
    own = api.post("/v1/accounts", TENANT_B, json={"kind": "paper", "account_id": "globex-main", "starting_cash": "5"})
    assert own.status_code == 201, own.text  # B has books of its own
    ghosts = {name: _ghost(value) for name, value in params.items()}
    path, ghost_path = _fill(template, params), _fill(template, ghosts)
    witness = _fill(walled.witness or template, params)
    before, audit_before = _witness(api, witness), _audit(api)
    secrets = world.ids() - set(params.values())  # the path's own ids are B's input, echoed in the 404

    methods = sorted(_operations(api)[template])
    assert methods
    for roles in ((), ("admin",)):
        headers = api.as_(TENANT_B, "intruder", roles=roles)
        for method in methods:
            body = walled.bodies.get(method)
            attempt = api.client.request(method.upper(), path, headers=headers, json=body)
            label = f"{method.upper()} {path} as {TENANT_B} {roles or 'user'}"
            assert attempt.status_code == 404, f"{label}: {attempt.status_code} {attempt.text}"
            assert attempt.headers["content-type"].startswith("application/problem+json"), label
            leaked = [s for s in secrets if s in attempt.text]
            assert not leaked, f"{label} leaks {leaked}: {attempt.text}"
            # the very answer a never-existing id gets: existence is not revealed either
            missing = api.client.request(method.upper(), ghost_path, headers=headers, json=body)
            assert missing.status_code == 404, f"{method.upper()} {ghost_path}: {missing.text}"
            unghost = {ghosts[n]: params[n] for n in params}
            assert _problem(missing, unghost) == _problem(attempt, {}), label

    assert _witness(api, witness) == before, f"{template}: A's resource changed under B's attempts"
    assert _audit(api) == audit_before, f"{template}: B's attempts wrote to A's audit trail"

    # the control: the same requests by A do reach the resource (B's 404s were the wall, not a dead route)
    for method in sorted(methods, key=lambda m: m == "delete"):
        mine = api.client.request(method.upper(), path, headers=api.as_(TENANT_A), json=walled.bodies.get(method))
        assert mine.status_code < 500 and mine.status_code not in (401, 403, 404, 405, 422), (
            f"{method.upper()} {path} as its owner: {mine.status_code} {mine.text}"
        )


# -- lists -----------------------------------------------------------------------------------------

# query parameters list routes require, as B fills them (its own ids)
B_QUERY = {"account_id": "acme-main"}  # an account of B's own that has the same id as A's


def test_no_list_of_b_ever_holds_anything_of_a(api: Api) -> None:
    world = World(api)
    world.everything()
    secrets = world.ids()
    own = api.post("/v1/accounts", TENANT_B, json={"kind": "paper", "account_id": "acme-main", "starting_cash": "7"})
    assert own.status_code == 201, own.text
    lists = 0
    for path, ops in _operations(api).items():
        if "{" in path or "get" not in ops:
            continue
        required = [p["name"] for p in ops["get"].get("parameters", []) if p.get("required")]
        unknown = set(required) - set(B_QUERY)
        assert not unknown, f"GET {path} requires {unknown}: add B's value to B_QUERY"
        query = {name: B_QUERY[name] for name in required}
        for user, roles in (("user-b", ()), ("ops-b", ("admin",))):
            response = api.client.get(path, params=query, headers=api.as_(TENANT_B, user, roles=roles))
            assert response.status_code == 200, f"GET {path} {query}: {response.text}"
            leaked = [s for s in secrets if s in response.text]
            assert not leaked, f"GET {path} as {TENANT_B} lists A's {leaked}: {response.text[:500]}"
        lists += 1
    assert lists >= 10  # strategies, backtests, deployments, orders, positions, fills, ledger, accounts, ...
    # B's account of the same id holds B's books only
    ledger = api.get("/v1/ledger", TENANT_B, params={"account_id": "acme-main"}).json()["items"]
    assert [e["amount"] for e in ledger] == ["7"]
    assert api.get("/v1/fills", TENANT_B, params={"account_id": "acme-main"}).json()["items"] == []
    assert api.get("/v1/orders", TENANT_B, params={"account_id": "acme-main"}).json()["items"] == []
    # and A still sees its own
    assert api.get("/v1/fills", params={"account_id": "acme-main"}).json()["items"]


def test_naming_an_account_of_a_in_a_query_reveals_nothing_to_b(api: Api) -> None:
    """Where the account selects what is listed (a required `account_id`): 404, as for an account that
    never existed. Where it only filters (optional): the very answer a never-existing account gets."""
    world = World(api)
    account_id = world.position["account_id"]
    ghost = _ghost(account_id)
    required_named = 0
    for path, ops in _operations(api).items():
        params = {p["name"]: p for p in ops.get("get", {}).get("parameters", []) if p["in"] == "query"}
        if "{" in path or "account_id" not in params:
            continue
        response = api.get(path, TENANT_B, params={"account_id": account_id})
        missing = api.get(path, TENANT_B, params={"account_id": ghost})
        label = f"GET {path}?account_id={account_id} as {TENANT_B}"
        assert CANARY not in response.text, label
        assert _problem(missing, {ghost: account_id}) == _problem(response, {}), f"{label}: {response.text}"
        if params["account_id"].get("required"):
            assert response.status_code == 404, f"{label}: {response.text}"
            required_named += 1
        else:
            assert response.status_code in (200, 404), f"{label}: {response.text}"
    assert required_named >= 4  # orders, positions, fills, ledger


# -- the documented exception: platform-admin routes naming a tenant --------------------------------


def test_admin_routes_naming_a_tenant(api: Api) -> None:
    world = World(api)
    world.kill_switch  # noqa: B018
    controls_before = _witness(api, "/v1/controls")
    b_user, b_admin = api.as_(TENANT_B, "user-b"), api.as_(TENANT_B, "ops-1", roles=("admin",))
    change = {"active": True, "reason": "maintenance"}

    # every non-admin: 403 (the route exists for admins only; this is not a resource of A's to hide)
    for tenant in (TENANT_A, TENANT_B):
        for headers in (b_user, api.as_(TENANT_A, "user-a")):
            read = api.client.get(f"/v1/controls/tenants/{tenant}", headers=headers)
            assert read.status_code == 403 and read.json()["type"] == "forbidden", read.text
            assert CANARY not in read.text
            write = api.client.post(f"/v1/controls/tenants/{tenant}/disable", headers=headers, json=change)
            assert write.status_code == 403 and CANARY not in write.text, write.text
    assert _witness(api, "/v1/controls") == controls_before

    # a platform admin (whatever tenant the token names) reads and disables the tenant it names, as documented
    read = api.client.get(f"/v1/controls/tenants/{TENANT_A}", headers=b_admin)
    assert read.status_code == 200, read.text
    assert [(c["tenant_id"], c["scope"]) for c in read.json()["items"]] == [(TENANT_A, "kill_switch")]
    disabled = api.client.post(f"/v1/controls/tenants/{TENANT_A}/disable", headers=b_admin, json=change)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["tenant_id"] == TENANT_A and disabled.json()["set_by"] == "user:ops-1"
    mine = api.get("/v1/controls").json()
    assert mine["trading_halted"] and {c["scope"] for c in mine["items"]} == {"kill_switch", "tenant_disabled"}
    # audited in A's trail (it sees who stopped it) and in the platform's; B's own trail is untouched
    assert any(e.action.startswith("control.tenant_disabled") for e in AuditRepository().list(TENANT_A))
    assert any(e.action.startswith("control.tenant_disabled") for e in AuditRepository().list(GLOBAL_TENANT))
    assert not [e for e in AuditRepository().list(TENANT_B) if e.action.startswith("control.")]
    # ... and only that tenant: B's controls are untouched
    assert api.get("/v1/controls", TENANT_B).json()["items"] == []
