"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis), as a tenant's user,
on the real app against the session's moto server.

Checks, for every generated request (valid and invalid ones: schemathesis' positive and negative modes):
no 5xx, the status code is documented for the operation, and the body conforms to the schema documented
for that status (errors included: they are `Problem`s, documented on every router through
`tradeflow.api.errors.PROBLEM_RESPONSES`, and per route for 403/409).

The cloud is wiped once per module (per xdist worker) and seeded with tenant A's world (an account with
a position, fills and ledger entries, a broker account, a strategy, a backtest, a deployment, a pending
order, a kill switch, market bars — `test_tenant_wall.World`), so lists answer with real items.
`test_every_operation_answers_as_documented` fuzzes every operation as A, path parameters generated
(mostly 404s). `test_operations_on_existing_resources_answer_as_documented` fuzzes again every operation
that names a resource — in its path (`test_tenant_wall.WALL` makes it), its `account_id` query, or its
body's `account_id`/`strategy_id` (with `symbol` a market that has a price) — with those names pinned to
a world made for that operation (of another tenant, so A's kill switch stops none of its orders): the
generated queries and bodies then reach the code behind the lookup.

Bounded for `make test`: `MAX_EXAMPLES` per operation (`TRADEFLOW_FUZZ_EXAMPLES=200` for a deeper run by
hand), derandomized (the same examples every run, so a failure reproduces: run the whole file), no
deadline (moto answers slower than a real table under load).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from api.test_tenant_wall import ADMIN_TENANT_ROUTES, WALL, World
from tradeflow.local.environment import use_local_cloud
from tradeflow.local.moto_server import MotoServer
from tradeflow.local.provision import provision

from apiclient import TENANT_A, Api, make_api

MAX_EXAMPLES = int(os.environ.get("TRADEFLOW_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# The app is built at import (schemathesis reads its schema to make one test per operation); it reaches
# AWS only per request, through the environment the fixtures point at the session's moto server.
_API = make_api(Path(tempfile.mkdtemp(prefix="tradeflow-fuzz-")))
schema = schemathesis.openapi.from_asgi("/openapi.json", _API.client.app)


_SPEC: dict[str, Any] = _API.client.get("/openapi.json").json()
# body fields that name an existing resource (or, for `symbol`, a market with a price), and what names them
_BODY_REFERENCES = ("account_id", "strategy_id", "symbol")


def _body_fields(operation: dict[str, Any]) -> set[str]:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return set(_SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {})) if ref else set()


def _names_a_resource(method: str, path: str, operation: dict[str, Any]) -> bool:
    """A path parameter, the `account_id` query that selects an account's books, or a body naming a
    resource (an order's account, a backtest's strategy, a deployment's account and strategy)."""
    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    naming_body = {"account_id", "strategy_id"} & _body_fields(operation)
    return "{" in path or (method == "get" and "account_id" in query) or bool(naming_body)


def _existing(world: World, name: str) -> str:
    """The value naming `world`'s resource for a body field of `_BODY_REFERENCES`."""
    if name == "symbol":
        return world.market
    made = world.account if name == "account_id" else world.strategy
    value: str = made[name]
    return value


_NAMING = {
    (method, path)
    for path, operations in _SPEC["paths"].items()
    for method, operation in operations.items()
    if _names_a_resource(method, path, operation)
}
naming_a_resource = schema.include(lambda ctx: (ctx.operation.method.lower(), ctx.operation.path) in _NAMING)


@pytest.fixture(scope="module")
def seeded(moto_server: MotoServer) -> World:
    """A clean cloud with all of tenant A's world, for the whole module (made again should another module's
    test, run in between on this worker, have wiped the cloud: pytest sets module fixtures up again)."""
    use_local_cloud(moto_server.endpoint)
    moto_server.reset()
    provision()
    world = World(_API)
    world.everything()
    return world


def _call(case: Any, tenant: str = TENANT_A) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**headers, **_API.as_(tenant, "fuzzer")}
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(case: Any, seeded: World) -> None:
    _call(case)


# per operation, a world of its own (of another tenant, so that A's kill switch, set by `seeded` and
# flipped by the fuzzer, stops none of its orders)
OWN_TENANT = "initech"
_WORLDS: dict[str, World] = {}


@naming_a_resource.parametrize()
@FUZZ_SETTINGS
def test_operations_on_existing_resources_answer_as_documented(case: Any, seeded: World) -> None:
    """The path (or `account_id`) names a resource made for this operation; the rest is fuzzed."""
    label = case.operation.label
    world = _WORLDS.setdefault(label, World(_API, OWN_TENANT, suffix=f"-{len(_WORLDS)}"))  # made once per operation
    template = case.operation.path
    if template in ADMIN_TENANT_ROUTES:
        case.path_parameters = {"tenant_id": OWN_TENANT}
    elif template in WALL:
        case.path_parameters = WALL[template].params(world)
    if isinstance(case.query, dict) and "account_id" in case.query:
        case.query["account_id"] = world.position["account_id"]
    if isinstance(case.body, dict):
        for name in _BODY_REFERENCES:
            if name in case.body:
                case.body[name] = _existing(world, name)
    _call(case, OWN_TENANT)


# -- what the fuzzer found (with TRADEFLOW_FUZZ_EXAMPLES=500), kept fixed ----------------------------

EXTREMES = ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
TIME_QUERIES = [("/v1/market/GOOG/bars", "start"), ("/v1/market/GOOG/bars", "end"), ("/v1/audit", "start"),
                ("/v1/audit", "end"), ("/v1/orders", "since"), ("/v1/fills", "until"), ("/v1/ledger", "since"),
                ("/v1/analytics", "since"), ("/v1/analytics", "until")]  # fmt: skip


@pytest.mark.parametrize("value", EXTREMES)
def test_timestamps_at_the_ends_of_the_calendar_are_422_not_500(api: Api, value: str) -> None:
    """`GET /v1/market/0/bars?end=0001-01-01T00:00:00Z` was a 500 (OverflowError computing `end - 1 µs`), as
    was any time filter whose UTC conversion leaves the calendar (`0001-01-01T00:00:00+01:00`)."""
    World(api).account  # noqa: B018
    for path, name in TIME_QUERIES:
        params = {name: value, "account_id": "acme-main"}
        response = api.get(path, params=params)
        assert response.status_code in (200, 404, 422), f"{path} {params}: {response.status_code} {response.text}"
    response = api.post("/v1/backtests", json={"definition": {"strategy": "sma_cross"}, "datasets": ["GOOG"],
                                               "start": value})  # fmt: skip
    assert response.status_code in (201, 422), response.text


def test_a_backtest_from_before_year_1000_round_trips(api: Api) -> None:
    """`POST /v1/backtests {"start": "0001-01-01T00:00:00Z", ...}` was a 500: the job was stored with the start
    rendered `1-01-01T...` (strftime's %Y does not pad years < 1000) and could not be read back."""
    body = {"definition": {"strategy": "sma_cross"}, "datasets": ["GOOG"], "start": "0001-01-01T00:00:00Z"}
    response = api.post("/v1/backtests", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["start"] == "0001-01-01T00:00:00.000000Z"
    assert api.get(response.json()["url"]).json()["start"] == "0001-01-01T00:00:00.000000Z"
