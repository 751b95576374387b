"""`positions`, `portfolio`, `analytics`, `fills` and `ledger`, over books made by the real pipeline
(manual orders through risk and execution)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.domain import Fill, Order, OrderSide
from tradeflow.portfolio.analytics import analyse

from apiclient import TENANT_B, Api
from helpers import T0, account, bars, deliver, receive

ACCT = "paper-1"


def trade(api: Api, side: str, quantity: str, symbol: str = "GOOG") -> str:
    response = api.post("/v1/orders", json={"account_id": ACCT, "symbol": symbol, "side": side, "quantity": quantity})
    assert response.status_code == 202, response.text
    deliver("risk", "signals", receive("signals"))
    deliver("execution", "orders", receive("orders"))
    coid: str = response.json()["client_order_id"]
    assert api.get(f"/v1/orders/{coid}").json()["status"] == "filled"
    return coid


@pytest.fixture
def books(api: Api) -> Api:
    """Bought 10 GOOG at 100, sold 4 at 110 (+40 realized), bought 5 MSFT at 200; GOOG now at 120."""
    account("acme", ACCT, cash=Decimal(10_000), fee_rate="0.001")
    bars("acme", "GOOG", [100], start=T0)
    bars("acme", "MSFT", [200], start=T0)
    trade(api, "buy", "10")
    bars("acme", "GOOG", [110], start=T0 + timedelta(minutes=1))
    trade(api, "sell", "4")
    trade(api, "buy", "5", "MSFT")
    bars("acme", "GOOG", [120], start=T0 + timedelta(minutes=2))
    return api


def test_positions_are_marked_to_the_latest_price(books: Api) -> None:
    page = books.get("/v1/positions", params={"account_id": ACCT}).json()
    by_symbol = {p["symbol"]: p for p in page["items"]}
    goog = by_symbol["GOOG"]
    assert goog["quantity"] == "6" and goog["side"] == "long" and goog["mark_source"] == "bar"
    assert Decimal(goog["mark_price"]) == 120 and Decimal(goog["average_price"]) == 100
    assert Decimal(goog["unrealized_pnl"]) == 120 and Decimal(goog["realized_pnl"]) == 40
    assert Decimal(goog["market_value"]) == 720
    one = books.get(f"/v1/positions/{ACCT}/MSFT").json()
    assert one["quantity"] == "5" and Decimal(one["unrealized_pnl"]) == 0


def test_positions_pagination_and_errors(books: Api) -> None:
    first = books.get("/v1/positions", params={"account_id": ACCT, "limit": 1}).json()
    assert len(first["items"]) <= 1 and first["next_cursor"]
    rest = books.get("/v1/positions", params={"account_id": ACCT, "cursor": first["next_cursor"]}).json()
    assert {p["symbol"] for p in first["items"] + rest["items"]} == {"GOOG", "MSFT"}
    assert books.get("/v1/positions", params={}).json()["errors"][0]["field"] == "query.account_id"
    assert books.get(f"/v1/positions/{ACCT}/AAPL").status_code == 404
    assert books.get("/v1/positions", params={"account_id": "nope"}).status_code == 404


def test_portfolio_per_account_and_totals(books: Api) -> None:
    view = books.get(f"/v1/portfolio/{ACCT}").json()
    fees = Decimal(view["fees"])
    assert fees == Decimal("1") + Decimal("0.44") + Decimal("1")  # 0.1% of 1000, 440 and 1000
    cash = Decimal(10_000) - 1000 + 440 - 1000 - fees
    assert Decimal(view["cash"]) == cash
    assert Decimal(view["market_value"]) == 6 * 120 + 5 * 200
    assert Decimal(view["equity"]) == cash + 1720
    assert Decimal(view["gross_exposure"]) == Decimal(view["net_exposure"]) == 1720
    assert Decimal(view["realized_pnl"]) == 40 and Decimal(view["unrealized_pnl"]) == 120
    assert Decimal(view["total_pnl"]) == 160 - fees
    allocation = {a["symbol"]: Decimal(a["weight"]) for a in view["allocation"]}
    assert allocation == {"MSFT": Decimal("0.5814"), "GOOG": Decimal("0.4186")}
    everything = books.get("/v1/portfolio").json()
    assert [a["account_id"] for a in everything["accounts"]] == [ACCT]
    assert everything["totals"]["equity"] == view["equity"]


def test_analytics_counts_round_trips(books: Api) -> None:
    # close GOOG: one round trip (buy 10, sell 4, sell 6) in the month of the close
    trade(books, "sell", "6")
    view = books.get("/v1/analytics", params={"account_id": ACCT}).json()
    assert view["total"]["round_trips"] == 1 and view["total"]["wins"] == 1
    assert view["total"]["win_rate"] == "1.0000"
    closed = books.get("/v1/fills", params={"account_id": ACCT, "symbol": "GOOG"}).json()["items"][0]["ts"]
    assert [m["key"] for m in view["by_month"]] == [closed[:7]]  # fills are at the time orders were placed
    assert [s["key"] for s in view["by_strategy"]] == ["manual"]
    assert view["open_round_trips"] == 1  # MSFT
    assert books.get("/v1/analytics").json()["total"]["round_trips"] == 1
    none = books.get("/v1/analytics", params={"since": "2100-01-01T00:00:00Z"}).json()
    assert none["total"]["round_trips"] == 0 and none["total"]["win_rate"] is None


def _fill(n: int, side: str, qty: str, price: str, coid: str = "o1", fee: str = "0") -> Fill:
    return Fill(
        fill_id=f"f{n}",
        tenant_id="acme",
        account_id=ACCT,
        client_order_id=coid,
        symbol="X",
        side=OrderSide(side),
        quantity=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
        ts=T0 + timedelta(days=31 * n),
        broker_fill_ref=str(n),
    )


def test_round_trips_cross_through_zero_and_split_fees() -> None:
    fills = [
        _fill(0, "buy", "10", "10", fee="1"),
        _fill(1, "sell", "15", "12", coid="o2", fee="3"),  # closes +20 (fee 2), opens short 5 (fee 1)
        _fill(2, "buy", "5", "14", coid="o3"),  # closes the short: -10
    ]
    orders = [
        Order(
            tenant_id="acme",
            account_id=ACCT,
            client_order_id=c,
            deployment_id=d,
            symbol="X",
            side=OrderSide.BUY,
            quantity=Decimal(1),
            created_at=T0,
            updated_at=T0,
        )
        for c, d in (("o1", "dep-1"), ("o2", None))
    ]
    result = analyse(fills, orders, {"dep-1": "sma_cross"})
    assert result.total.round_trips == 2 and result.total.wins == 1 and result.total.losses == 1
    assert result.total.pnl == Decimal(20 - 1 - 2) + Decimal(-10 - 1)
    assert {b.key: b.pnl for b in result.by_strategy} == {"sma_cross": Decimal(17), "manual": Decimal(-11)}
    assert [b.key for b in result.by_month] == ["2026-02", "2026-03"]


def test_fills_newest_first_with_filters_and_pages(books: Api) -> None:
    items = books.get("/v1/fills", params={"account_id": ACCT}).json()["items"]
    assert [(f["symbol"], f["side"], f["quantity"]) for f in items] == [
        ("MSFT", "buy", "5"),
        ("GOOG", "sell", "4"),
        ("GOOG", "buy", "10"),
    ]
    assert Decimal(items[0]["notional"]) == 1000
    sells = books.get("/v1/fills", params={"account_id": ACCT, "side": "sell"}).json()["items"]
    assert [f["quantity"] for f in sells] == ["4"]
    goog = books.get("/v1/fills", params={"account_id": ACCT, "symbol": "GOOG"}).json()["items"]
    assert len(goog) == 2
    page = books.get("/v1/fills", params={"account_id": ACCT, "limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = books.get("/v1/fills", params={"account_id": ACCT, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1
    later = books.get("/v1/fills", params={"account_id": ACCT, "since": "2100-01-01T00:00:00Z"}).json()
    assert later["items"] == []


def test_ledger_newest_first_with_filters(books: Api) -> None:
    entries = books.get("/v1/ledger", params={"account_id": ACCT}).json()["items"]
    assert entries[-1]["kind"] == "deposit" and entries[-1]["amount"] == "10000"
    kinds = {e["kind"] for e in entries}
    assert kinds == {"deposit", "trade", "fee"}
    fees = books.get("/v1/ledger", params={"account_id": ACCT, "kind": "fee"}).json()["items"]
    assert len(fees) == 3 and all(Decimal(e["amount"]) < 0 for e in fees)
    msft = books.get("/v1/ledger", params={"account_id": ACCT, "symbol": "MSFT"}).json()["items"]
    assert {e["kind"] for e in msft} == {"trade", "fee"}
    bad = books.get("/v1/ledger", params={"account_id": ACCT, "kind": "bonus"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.kind"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/positions?account_id=paper-1",
        "/v1/positions/paper-1/GOOG",
        "/v1/portfolio/paper-1",
        "/v1/analytics?account_id=paper-1",
        "/v1/fills?account_id=paper-1",
        "/v1/ledger?account_id=paper-1",
    ],
)
def test_another_tenant_gets_404(books: Api, path: str) -> None:
    response = books.get(path, tenant=TENANT_B)
    assert response.status_code == 404, response.text


def test_another_tenant_sees_an_empty_portfolio(books: Api) -> None:
    view: dict[str, Any] = books.get("/v1/portfolio", tenant=TENANT_B).json()
    assert view["accounts"] == [] and view["totals"]["equity"] == "0"
