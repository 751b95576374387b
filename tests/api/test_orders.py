"""`/v1/orders`: manual orders through the real pipeline (API -> signals -> risk -> orders ->
execution, driven with the handlers like the integration tests), Idempotency-Key, list/get/cancel,
validation and the tenant wall."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.domain import ControlScope, SignalOutcome, TradingControl
from tradeflow.manual.model import journal_id
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.controls import ControlRepository
from tradeflow.storage.signals import SignalRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import T0, account, bars, deliver, receive

ACCT = "paper-1"


@pytest.fixture
def market(api: Api) -> Api:
    account(TENANT_A, ACCT, cash=Decimal(10_000))
    bars(TENANT_A, "GOOG", [100, 101, 102], start=T0 - timedelta(minutes=3))
    return api


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"account_id": ACCT, "symbol": "GOOG", "side": "buy", "quantity": "10", "type": "market"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def run_risk() -> Any:
    messages = receive("signals")
    if messages:
        deliver("risk", "signals", messages)
    return messages


def run_execution() -> Any:
    messages = receive("orders")
    if messages:
        deliver("execution", "orders", messages)
    return messages


def pipeline() -> None:
    run_risk()
    run_execution()


def place(api: Api, **overrides: Any) -> str:
    response = api.post("/v1/orders", json=order(**overrides))
    assert response.status_code == 202, response.text
    coid: str = response.json()["client_order_id"]
    return coid


def test_a_manual_market_order_goes_through_risk_and_execution(market: Api) -> None:
    response = market.post("/v1/orders", json=order(client_tag="my first"))
    assert response.status_code == 202, response.text
    body = response.json()
    coid = body["client_order_id"]
    assert coid.startswith("tfm-") and body["status"] == "pending" and body["reference_price"] == "102"
    assert response.headers["Location"] == body["status_url"] == f"/v1/orders/{coid}"
    assert market.get(body["status_url"]).json()["status"] == "pending"

    run_risk()
    approved = market.get(body["status_url"]).json()
    assert approved["status"] == "approved" and approved["client_tag"] == "my first"
    intents = receive("orders")
    assert len(intents) == 1
    deliver("execution", "orders", intents)

    filled = market.get(body["status_url"]).json()
    assert filled["status"] == "filled" and filled["source"] == "manual"
    assert filled["filled_quantity"] == "10" and filled["average_fill_price"] == "102"
    journal = SignalRepository().get(TENANT_A, journal_id(coid) or "")
    assert journal is not None and journal.outcome is SignalOutcome.FILLED
    assert "order.placed" in {e.action for e in AuditRepository().list(TENANT_A)}
    position = market.get(f"/v1/positions/{ACCT}/GOOG").json()
    assert position["quantity"] == "10"


def test_limit_order_keeps_its_terms_and_can_be_cancelled_at_the_broker(market: Api) -> None:
    coid = place(market, type="limit", limit_price="50", time_in_force="gtc")
    pipeline()
    resting = market.get(f"/v1/orders/{coid}").json()
    assert resting["status"] == "accepted" and resting["type"] == "limit" and resting["limit_price"] == "50"
    assert resting["time_in_force"] == "gtc"

    cancel = market.post(f"/v1/orders/{coid}/cancel")
    assert cancel.status_code == 202 and cancel.json()["cancel"] == "requested"
    run_execution()
    assert market.get(f"/v1/orders/{coid}").json()["status"] == "cancelled"
    again = market.post(f"/v1/orders/{coid}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    journal = SignalRepository().get(TENANT_A, journal_id(coid) or "")
    assert journal is not None and journal.outcome is SignalOutcome.CANCELLED


def test_an_order_cancelled_before_risk_never_reaches_the_broker(market: Api) -> None:
    coid = place(market)
    cancel = market.post(f"/v1/orders/{coid}/cancel")
    assert cancel.status_code == 202 and cancel.json() | {"status_url": ""} == {
        "client_order_id": coid,
        "status": "cancelled",
        "cancel": "done",
        "status_url": "",
    }
    run_risk()
    assert receive("orders") == []
    assert market.get(f"/v1/orders/{coid}").json()["status"] == "cancelled"


def test_cancel_while_on_the_way_to_the_broker_asks_to_retry(market: Api) -> None:
    coid = place(market)
    run_risk()  # approved, intent queued, no order record yet
    response = market.post(f"/v1/orders/{coid}/cancel")
    assert response.status_code == 409 and response.headers["Retry-After"] == "2"


def test_risk_rejects_under_the_kill_switch_with_the_reason(market: Api) -> None:
    ControlRepository().put(
        TradingControl(tenant_id=TENANT_A, scope=ControlScope.KILL_SWITCH, active=True, reason="stop", updated_at=T0)
    )
    coid = place(market)
    run_risk()
    assert receive("orders") == []
    view = market.get(f"/v1/orders/{coid}").json()
    assert view["status"] == "rejected" and "kill_switch" in view["reason"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"quantity": "1000"}, "insufficient buying power"),
        ({"side": "sell"}, "short selling is not allowed"),
    ],
)
def test_risk_checks_buying_power_and_position(market: Api, overrides: dict[str, Any], reason: str) -> None:
    coid = place(market, **overrides)
    run_risk()
    view = market.get(f"/v1/orders/{coid}").json()
    assert view["status"] == "rejected" and reason in view["reason"]


def test_a_sell_that_closes_a_position_is_approved(market: Api) -> None:
    place(market)
    pipeline()
    coid = place(market, side="sell", quantity="4")
    pipeline()
    assert market.get(f"/v1/orders/{coid}").json()["status"] == "filled"
    assert market.get(f"/v1/positions/{ACCT}/GOOG").json()["quantity"] == "6"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order(quantity="-1"), "body.quantity"),
        (order(quantity="abc"), "body.quantity"),
        (order(side="hold"), "body.side"),
        (order(type="trailing"), "body.type"),
        (order(time_in_force="fok"), "body.time_in_force"),
        (order(symbol="GO OG"), "body.symbol"),
        (order(account_id="nope"), "body.account_id"),
        (order(symbol="ZZZZ"), "body.symbol"),
        (order(extra=1), "body.extra"),
        ({"symbol": "GOOG"}, "body.account_id"),
    ],
)
def test_invalid_orders_are_422_naming_the_field(market: Api, body: dict[str, Any], field: str) -> None:
    response = market.post("/v1/orders", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert receive("signals") == []


def test_prices_must_match_the_order_type(market: Api) -> None:
    for body in (order(type="limit"), order(limit_price="10"), order(type="stop_limit", stop_price="1")):
        response = market.post("/v1/orders", json=body)
        assert response.status_code == 422 and "price" in response.json()["detail"]


def test_an_idempotency_key_returns_the_first_result(market: Api) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = market.post("/v1/orders", json=order(), headers=headers)
    second = market.post("/v1/orders", json=order(), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]
    assert len(receive("signals")) == 1
    other = market.post("/v1/orders", json=order(quantity="3"), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # keys are per tenant: the same key of another tenant is another request
    account(TENANT_B, ACCT, cash=Decimal(1000))
    bars(TENANT_B, "GOOG", [100], start=T0)
    theirs = market.post("/v1/orders", tenant=TENANT_B, json=order(), headers=headers)
    assert theirs.status_code == 202 and theirs.json()["client_order_id"] != first.json()["client_order_id"]


def test_a_malformed_idempotency_key_is_422(market: Api) -> None:
    response = market.post("/v1/orders", json=order(), headers={"Idempotency-Key": "has space"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"


def test_a_failed_request_does_not_burn_its_key(market: Api) -> None:
    headers = {"Idempotency-Key": "k-2"}
    assert market.post("/v1/orders", json=order(account_id="paper-2"), headers=headers).status_code == 422
    account(TENANT_A, "paper-2")
    assert market.post("/v1/orders", json=order(account_id="paper-2"), headers=headers).status_code == 202


def test_list_is_newest_first_filtered_and_paginated(market: Api) -> None:
    ids = [place(market, quantity=str(q)) for q in (1, 2, 3)]
    pipeline()
    limit_id = place(market, type="limit", limit_price="50", time_in_force="gtc")
    pipeline()
    listed = market.get("/v1/orders", params={"account_id": ACCT}).json()["items"]
    assert {o["client_order_id"] for o in listed} == {*ids, limit_id}
    assert [o["created_at"] for o in listed] == sorted((o["created_at"] for o in listed), reverse=True)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"account_id": ACCT, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = market.get("/v1/orders", params=params).json()
        seen += [o["client_order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([*ids, limit_id])

    accepted = market.get("/v1/orders", params={"account_id": ACCT, "status": "accepted"}).json()["items"]
    assert [o["client_order_id"] for o in accepted] == [limit_id]
    assert market.get("/v1/orders", params={"account_id": ACCT, "symbol": "MSFT"}).json()["items"] == []
    future = market.get("/v1/orders", params={"account_id": ACCT, "since": "2100-01-01T00:00:00Z"}).json()
    assert future["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query.account_id"),
        ({"account_id": ACCT, "status": "done"}, "query.status"),
        ({"account_id": ACCT, "limit": 0}, "query.limit"),
        ({"account_id": ACCT, "since": "2026-01-02T00:00:00"}, "query.since"),
        ({"account_id": ACCT, "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "query.until"),
        ({"account_id": ACCT, "cursor": "garbage"}, "query.cursor"),
    ],
)
def test_list_validation(market: Api, params: dict[str, Any], field: str) -> None:
    response = market.get("/v1/orders", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


def test_another_tenant_can_neither_see_nor_cancel_an_order(market: Api) -> None:
    coid = place(market, type="limit", limit_price="50", time_in_force="gtc")
    pipeline()
    assert market.get(f"/v1/orders/{coid}", tenant=TENANT_B).status_code == 404
    assert market.post(f"/v1/orders/{coid}/cancel", tenant=TENANT_B).status_code == 404
    assert market.get("/v1/orders", tenant=TENANT_B, params={"account_id": ACCT}).status_code == 404
    assert market.get(f"/v1/orders/{coid}").json()["status"] == "accepted"
    assert market.get("/v1/orders/tfm-unknown").status_code == 404


def test_orders_need_a_token(api: Api) -> None:
    assert api.client.post("/v1/orders", json=order()).status_code == 401
    assert api.client.get("/v1/orders", params={"account_id": ACCT}).status_code == 401
