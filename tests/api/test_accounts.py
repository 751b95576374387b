"""`/v1/accounts`: paper accounts (create, list, get, reset), validation naming the field, the tenant
wall (404 for another tenant's account on read, reset, rotate, delete), and the in-use rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.brokers.factory import broker_for
from tradeflow.domain import Deployment, DeploymentStatus, OrderIntent, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.domain.types import iso
from tradeflow.execution.service import ExecutionService
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository

from apiclient import TENANT_A, TENANT_B, Api
from helpers import bars

PAPER = {"kind": "paper", "account_id": "paper-main", "name": "Main", "starting_cash": "25000.50"}
ALPACA = {"kind": "alpaca", "account_id": "alp-1", "api_key_id": "PKTEST1234567890ABCD", "secret_key": "s" * 40}


def _create(api: Api, body: dict[str, Any], tenant: str = TENANT_A) -> Any:
    return api.post("/v1/accounts", tenant, json=body)


def _errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_create_a_paper_account_and_read_it_back(api: Api) -> None:
    created = _create(api, {**PAPER, "fill_model": "last_price", "fee_rate": "0.001", "currency": "EUR"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["account_id"] == "paper-main" and body["kind"] == "paper" and body["broker"] == "paper"
    assert body["cash"] == body["equity"] == body["starting_cash"] == "25000.50"
    assert body["reserved"] == "0" and body["status"] == "idle" and body["currency"] == "EUR"
    assert body["paper"]["fill_model"] == "last_price" and body["paper"]["fee_rate"] == "0.001"
    assert body["credentials"] is None
    fetched = api.get("/v1/accounts/paper-main")
    assert fetched.status_code == 200 and fetched.json() == body
    # the opening deposit is in the ledger, the creation in the audit trail
    (deposit,) = LedgerRepository().list(TENANT_A, "paper-main")
    assert deposit.amount == Decimal("25000.50")
    assert [e.action for e in AuditRepository().list(TENANT_A)] == ["account.created"]


def test_an_id_is_generated_when_omitted_and_a_taken_id_is_a_conflict(api: Api) -> None:
    generated = _create(api, {"kind": "paper", "starting_cash": 1000}).json()["account_id"]
    assert generated.startswith("acc_")
    assert _create(api, PAPER).status_code == 201
    again = _create(api, PAPER)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    # the same id in another tenant is another account
    assert _create(api, PAPER, TENANT_B).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PAPER, "starting_cash": "-5"}, "body.starting_cash"),
        ({**PAPER, "starting_cash": "0"}, "body.starting_cash"),
        ({**PAPER, "starting_cash": "1e13"}, "body.starting_cash"),
        ({**PAPER, "starting_cash": "NaN"}, "body.starting_cash"),
        ({k: v for k, v in PAPER.items() if k != "starting_cash"}, "body.starting_cash"),
        ({**PAPER, "kind": "futures"}, "body.kind"),
        ({k: v for k, v in PAPER.items() if k != "kind"}, "body.kind"),
        ({**PAPER, "fill_model": "midpoint"}, "body.fill_model"),
        ({**PAPER, "timeframe": "7m"}, "body.timeframe"),
        ({**PAPER, "slippage_bps": "-1"}, "body.slippage_bps"),
        ({**PAPER, "account_id": "has space"}, "body.account_id"),
        ({**PAPER, "account_id": "a:b"}, "body.account_id"),
        ({**PAPER, "currency": "usd"}, "body.currency"),
        ({**PAPER, "surprise": 1}, "body.surprise"),
        ({k: v for k, v in ALPACA.items() if k != "secret_key"}, "body.secret_key"),
        ({**ALPACA, "api_key_id": "short"}, "body.api_key_id"),
        ({**ALPACA, "secret_key": "tiny"}, "body.secret_key"),
        (
            {"kind": "ccxt", "exchange": "nowhere", "api_key": "K" * 24, "secret": "S" * 24},
            "body.exchange",
        ),
        ({"kind": "ccxt", "exchange": "kraken", "api_key": "K" * 24}, "body.secret"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    errors = _errors(_create(api, body))
    assert field in errors, errors
    assert "s" * 40 not in str(errors)  # no input is echoed (bodies carry secrets)


def test_authentication_comes_before_validation(api: Api) -> None:
    assert api.client.post("/v1/accounts", json={"kind": "nope"}).status_code == 401
    assert api.client.put("/v1/accounts/x/credentials", json={}).status_code == 401
    assert api.client.get("/v1/accounts").status_code == 401


def test_a_non_object_body_or_bad_json_is_422_not_500(api: Api) -> None:
    assert api.post("/v1/accounts", json=[1, 2]).status_code == 422
    bad = api.post("/v1/accounts", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 422


def test_list_is_paginated_and_filtered(api: Api) -> None:
    for i in range(5):
        assert _create(api, {"kind": "paper", "account_id": f"p{i}", "starting_cash": 100}).status_code == 201
    assert _create(api, ALPACA).status_code == 201
    _create(api, {"kind": "paper", "account_id": "other", "starting_cash": 1}, TENANT_B)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/accounts", params=params).json()
        assert len(page["items"]) <= 2
        seen += [a["account_id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == ["alp-1", "p0", "p1", "p2", "p3", "p4"]
    paper = api.get("/v1/accounts", params={"kind": "paper", "limit": 100}).json()["items"]
    assert sorted(a["account_id"] for a in paper) == ["p0", "p1", "p2", "p3", "p4"]
    alpaca = api.get("/v1/accounts", params={"kind": "alpaca"}).json()["items"]
    assert [a["account_id"] for a in alpaca] == ["alp-1"]
    assert api.get("/v1/accounts", params={"kind": "ccxt"}).json()["items"] == []
    assert len(api.get("/v1/accounts", params={"mode": "paper", "limit": 100}).json()["items"]) == 6
    assert _errors(api.get("/v1/accounts", params={"kind": "stocks"})).keys() == {"query.kind"}
    assert _errors(api.get("/v1/accounts", params={"limit": 0})).keys() == {"query.limit"}
    other = api.get("/v1/accounts", TENANT_B).json()["items"]
    assert [a["account_id"] for a in other] == ["other"]


def test_another_tenants_account_is_not_found_for_every_route(api: Api) -> None:
    assert _create(api, PAPER).status_code == 201
    assert _create(api, ALPACA).status_code == 201
    b = api.as_(TENANT_B)
    for account in ("paper-main", "alp-1", "missing"):
        assert api.client.get(f"/v1/accounts/{account}", headers=b).status_code == 404
        assert api.client.post(f"/v1/accounts/{account}/reset", headers=b).status_code == 404
        rotated = api.client.put(
            f"/v1/accounts/{account}/credentials",
            headers=b,
            json={"kind": "alpaca", "api_key_id": "PKNEW1234567890WXYZ", "secret_key": "n" * 40},
        )
        assert rotated.status_code == 404
        assert api.client.delete(f"/v1/accounts/{account}", headers=b).status_code == 404
    # and tenant A's accounts are untouched
    assert api.get("/v1/accounts/paper-main").json()["cash"] == "25000.50"
    assert api.get("/v1/accounts/alp-1").status_code == 200
    assert api.client.get("/v1/accounts/paper-main").status_code == 401


def _trade(tenant: str, account_id: str, at: datetime) -> None:
    """A filled market buy and a resting limit buy through the real execution path."""
    bars(tenant, "GOOG", [100.0] * 5, start=at - timedelta(minutes=5))
    service = ExecutionService(broker_for)
    for i, (order_type, limit) in enumerate(((OrderType.MARKET, None), (OrderType.LIMIT, Decimal(50)))):
        intent = OrderIntent(
            tenant_id=tenant,
            account_id=account_id,
            client_order_id=f"tf-test-{i}",
            signal_id=f"sig-test-{i}",
            symbol="GOOG",
            side=OrderSide.BUY,
            quantity=Decimal(10),
            order_type=order_type,
            time_in_force=TimeInForce.GTC,
            limit_price=limit,
            reference_price=Decimal(100),
            reserved_notional=Decimal(1000) if limit is None else Decimal(500),
            decided_at=at,
        )
        service.execute(intent)


def test_reset_flattens_cancels_and_restores_the_starting_cash(api: Api) -> None:
    assert _create(api, {**PAPER, "fill_model": "last_price", "starting_cash": "10000"}).status_code == 201
    at = datetime.now(UTC).replace(second=0, microsecond=0)
    _trade(TENANT_A, "paper-main", at)
    before = api.get("/v1/accounts/paper-main").json()
    assert Decimal(before["cash"]) == Decimal(9000)  # 10 GOOG at 100
    assert Decimal(before["equity"]) == Decimal(10000)
    statuses = {o.client_order_id: o.status for o in OrderRepository().list_for_account(TENANT_A, "paper-main")}
    assert statuses == {"tf-test-0": OrderStatus.FILLED, "tf-test-1": OrderStatus.ACCEPTED}

    reset = api.post("/v1/accounts/paper-main/reset")
    assert reset.status_code == 200, reset.text
    body = reset.json()
    assert body["cash"] == body["equity"] == "10000" and body["reserved"] == "0"
    assert all(p.quantity == 0 for p in PositionRepository().list(TENANT_A, "paper-main"))
    resting = OrderRepository().get(TENANT_A, "tf-test-1")
    assert resting is not None and resting.status is OrderStatus.CANCELLED
    assert DynamoTable("paper_orders").query(f"{TENANT_A}#paper-main") == []
    ledger = LedgerRepository().list(TENANT_A, "paper-main")
    assert ledger[-1].kind.value == "reset" and ledger[-1].amount == Decimal(1000)
    assert sum((e.amount for e in ledger), Decimal(0)) == Decimal(10000)  # cash = sum of the ledger
    actions = [e.action for e in AuditRepository().list(TENANT_A)]
    assert "account.reset" in actions and "order.cancelled" in actions
    reset_event = next(e for e in AuditRepository().list(TENANT_A) if e.action == "account.reset")
    assert reset_event.actor == "user:user-1" and reset_event.details["flattened"] == ["GOOG"]
    # the reset account trades again from a clean book
    stored = AccountRepository().get(TENANT_A, "paper-main")
    assert stored is not None and stored.pending == {} and stored.cash == Decimal(10000)


def _deploy(account_id: str, status: DeploymentStatus) -> None:
    now = datetime.now(UTC)
    DeploymentRepository().put(
        Deployment(
            tenant_id=TENANT_A,
            deployment_id=f"dep-{status.value}",
            strategy="sma_cross",
            symbols=["GOOG"],
            account_id=account_id,
            status=status,
            created_at=now,
            updated_at=now,
        )
    )


@pytest.mark.parametrize("status", [DeploymentStatus.ACTIVE, DeploymentStatus.PAUSED])
def test_reset_and_delete_are_refused_while_a_deployment_uses_the_account(api: Api, status: DeploymentStatus) -> None:
    assert _create(api, PAPER).status_code == 201
    _deploy("paper-main", status)
    account = api.get("/v1/accounts/paper-main").json()
    assert account["status"] == "in_use" and account["in_use_by"] == [f"dep-{status.value}"]
    for response in (api.post("/v1/accounts/paper-main/reset"), api.client.delete(
        "/v1/accounts/paper-main", headers=api.as_()
    )):  # fmt: skip
        assert response.status_code == 409
        assert f"dep-{status.value}" in response.json()["detail"]


def test_a_stopped_deployment_does_not_block_a_reset(api: Api) -> None:
    assert _create(api, PAPER).status_code == 201
    _deploy("paper-main", DeploymentStatus.STOPPED)
    assert api.get("/v1/accounts/paper-main").json()["status"] == "idle"
    assert api.post("/v1/accounts/paper-main/reset").status_code == 200


def test_only_paper_accounts_can_be_reset(api: Api) -> None:
    assert _create(api, ALPACA).status_code == 201
    refused = api.post("/v1/accounts/alp-1/reset")
    assert refused.status_code == 409 and "paper" in refused.json()["detail"]


def test_delete_removes_the_account_and_its_id_is_not_reused(api: Api) -> None:
    assert _create(api, PAPER).status_code == 201
    deleted = api.client.delete("/v1/accounts/paper-main", headers=api.as_())
    assert deleted.status_code == 204
    assert api.get("/v1/accounts/paper-main").status_code == 404
    assert api.client.delete("/v1/accounts/paper-main", headers=api.as_()).status_code == 404
    reused = _create(api, PAPER)
    assert reused.status_code == 409 and "history" in reused.json()["detail"]
    assert [e.action for e in AuditRepository().list(TENANT_A)][-1] == "account.deleted"


def test_delete_is_refused_while_orders_are_open(api: Api) -> None:
    assert _create(api, {**PAPER, "starting_cash": "10000"}).status_code == 201
    _trade(TENANT_A, "paper-main", datetime.now(UTC).replace(second=0, microsecond=0))
    refused = api.client.delete("/v1/accounts/paper-main", headers=api.as_())
    assert refused.status_code == 409 and "open orders" in refused.json()["detail"]


def test_paper_accounts_have_no_credentials_to_rotate(api: Api) -> None:
    assert _create(api, PAPER).status_code == 201
    body = {"kind": "alpaca", "api_key_id": "PKNEW1234567890WXYZ", "secret_key": "n" * 40}
    assert api.client.put("/v1/accounts/paper-main/credentials", headers=api.as_(), json=body).status_code == 409


def test_timestamps_are_utc_strings(api: Api) -> None:
    body = _create(api, PAPER).json()
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == len(iso(datetime.now(UTC)))
