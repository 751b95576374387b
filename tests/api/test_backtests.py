"""`/v1/backtests`: synchronous runs (201, with the result as the backtester produces it), queued runs
(202, a job sent to the `backtests` queue), get and list (paginated, by status), the datasets list,
422s naming the field, and the tenant wall."""

from __future__ import annotations

import json
from typing import Any

from tradeflow.backtest import BacktestConfig, run_backtest
from tradeflow.backtest.jobs import SYNC_MAX_BARS
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import create

from apiclient import TENANT_A, TENANT_B, Api
from helpers import receive

SMA: dict[str, Any] = {"strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}
BIG = ["SPY", "GOOG", "002032.SZ"]  # 12,000+ bars: over the synchronous limit


def _run(api: Api, tenant: str = TENANT_A, **body: Any) -> Any:
    return api.post("/v1/backtests", tenant, json={"definition": SMA, "datasets": ["GOOG"]} | body)


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_a_small_run_answers_with_the_backtesters_result(api: Api) -> None:
    response = _run(api, config={"commission": 0.001, "cash": 50_000})
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == job["url"] == f"/v1/backtests/{job['job_id']}"
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["mode"] == "sync"
    assert job["config"] == {"commission": 0.001, "cash": 50_000.0}
    expected = run_backtest(
        load_dataset("GOOG"), create("sma_cross", SMA["params"]), BacktestConfig(commission=0.001, cash=50_000)
    ).model_dump(mode="json")
    assert job["result"] == json.loads(json.dumps(expected))
    result = job["result"]
    assert len(result["equity_curve"]) == len(result["timestamps"]) == len(result["drawdown_pct"]) == job["bars"]
    assert result["trades"] and job["metrics"] == result["metrics"]
    again = api.get(job["url"]).json()  # stored: the same result read back
    assert again == job


def test_a_saved_strategy_runs_by_id_as_a_snapshot(api: Api) -> None:
    saved = api.post("/v1/strategies", json={"name": "cross", **SMA}).json()
    job = api.post("/v1/backtests", json={"strategy_id": saved["strategy_id"], "datasets": ["GOOG"]}).json()
    assert job["strategy"] == "cross" and job["strategy_id"] == saved["strategy_id"] and job["strategy_version"] == 1
    assert job["definition"] == {"strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "spec": None}
    inline = _run(api).json()
    assert inline["result"]["metrics"] == job["result"]["metrics"]
    foreign = api.post("/v1/backtests", TENANT_B, json={"strategy_id": saved["strategy_id"], "datasets": ["GOOG"]})
    assert _fields(foreign) == ["body.strategy_id"]


def test_a_portfolio_and_a_date_window(api: Api) -> None:
    job = _run(api, datasets=["GOOG", "ASML.AS"], start="2011-01-01T00:00:00Z", end="2012-06-30T00:00:00Z").json()
    result = job["result"]
    assert result["symbols"] == ["GOOG", "ASML.AS"]
    assert result["timestamps"][0] >= "2011-01-01" and result["timestamps"][-1] < "2012-06-30"
    assert {t["symbol"] for t in result["trades"]} <= {"GOOG", "ASML.AS"}


def test_a_large_run_is_queued(api: Api) -> None:
    response = _run(api, datasets=BIG)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (
        job["status"] == "queued" and job["mode"] == "async" and job["result"] is None and job["bars"] > SYNC_MAX_BARS
    )
    assert response.headers["location"] == job["url"]
    (message,) = receive("backtests")
    assert json.loads(message["Body"]) == {"tenant_id": TENANT_A, "job_id": job["job_id"]}
    assert api.get(job["url"]).json()["status"] == "queued"
    forced = _run(api, mode="async")
    assert forced.status_code == 202 and forced.json()["bars"] < SYNC_MAX_BARS


def test_invalid_requests_name_the_field(api: Api) -> None:
    assert _fields(_run(api, config={"cash": -1})) == ["body.config.cash"]
    assert _fields(_run(api, config={"fill": "whenever"})) == ["body.config.fill"]
    assert _fields(_run(api, config={"leverage": 2})) == ["body.config.leverage"]
    assert _fields(_run(api, datasets=["GOOG", "NOPE"])) == ["body.datasets.1"]
    assert _fields(_run(api, datasets=["GOOG", "GOOG"])) == ["body.datasets.1"]
    assert _fields(_run(api, datasets=[])) == ["body.datasets"]
    assert _fields(_run(api, definition={"strategy": "sma_cross", "params": {"fast": 0}})) == [
        "body.definition.params.fast"
    ]
    assert _fields(_run(api, definition={"spec": {"name": "x"}})) == ["body.definition.spec.entry"]
    assert _fields(_run(api, strategy_id="stg_x")) == ["body"]  # both given
    assert _fields(api.post("/v1/backtests", json={"datasets": ["GOOG"]})) == ["body"]  # neither
    window = _run(api, start="2013-02-01T00:00:00Z")  # 20 bars: too few for slow=30
    assert _fields(window) == ["body.datasets.0"] and "warm up" in window.text
    assert _fields(_run(api, start="2012-01-01T00:00:00Z", end="2011-01-01T00:00:00Z")) == ["body.end"]
    assert _fields(_run(api, datasets=BIG, mode="sync")) == ["body.mode"]
    assert _fields(_run(api, mode="later")) == ["body.mode"]
    assert api.get("/v1/backtests").json()["items"] == []  # nothing stored for refused requests


def test_another_tenants_backtest_is_not_found(api: Api) -> None:
    job = _run(api).json()
    assert api.get(job["url"], TENANT_B).status_code == 404
    assert api.get("/v1/backtests/btj_missing").status_code == 404
    assert api.get("/v1/backtests", TENANT_B).json() == {"items": [], "next_cursor": None}


def test_list_is_newest_first_paginated_and_filtered(api: Api) -> None:
    ids = [_run(api).json()["job_id"] for _ in range(3)]
    queued = _run(api, mode="async").json()["job_id"]
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/backtests", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        assert all("result" not in item for item in page["items"])
        seen.extend(item["job_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [queued, *reversed(ids)]
    only = api.get("/v1/backtests", params={"status": "queued"}).json()["items"]
    assert [j["job_id"] for j in only] == [queued]
    assert _fields(api.get("/v1/backtests", params={"status": "lost"})) == ["query.status"]


def test_datasets_are_listed(api: Api) -> None:
    datasets = {d["symbol"]: d for d in api.get("/v1/backtests/datasets").json()}
    assert datasets["GOOG"]["bars"] == len(load_dataset("GOOG")) and datasets["BTCUSD"]["asset_class"] == "crypto"


def test_crypto_trades_fractions_unless_told_otherwise(api: Api) -> None:
    definition = {"strategy": "sma_cross", "params": {"fast": 3, "slow": 12}}
    fractional = _run(api, definition=definition, datasets=["BTCUSD"]).json()
    assert fractional["result"]["config"]["fractional"] is True and fractional["result"]["trades"]
    whole = _run(api, definition=definition, datasets=["BTCUSD"], config={"fractional": False}).json()
    assert whole["result"]["config"]["fractional"] is False


def test_routes_need_a_token(api: Api) -> None:
    assert api.client.get("/v1/backtests").status_code == 401
    assert api.client.post("/v1/backtests", json={}).status_code == 401
