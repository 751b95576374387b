"""`GET /v1/portfolio/{account_id}/equity`: the equity curve rebuilt from the recorded ledger, fills and
bars — over books made by the real pipeline (manual orders through risk and execution), and the replay
rules on hand-made records."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from api import test_portfolio
from tradeflow.domain import Bar, Fill, LedgerEntry, LedgerEntryKind, OrderSide
from tradeflow.portfolio.equity import EquityPoint, replay, thin

from apiclient import TENANT_B, Api
from helpers import T0, bars

ACCT = test_portfolio.ACCT
books = test_portfolio.books  # the same books, a fixture: bought and sold GOOG, bought MSFT, through the pipeline
PATH = f"/v1/portfolio/{ACCT}/equity"


def _curve(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get(PATH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_curve_replays_the_ledger_and_fills_marked_to_bars(books: Api) -> None:
    curve = _curve(books)
    assert curve["account_id"] == ACCT and curve["timeframe"] == "1m" and curve["sampled"] is False
    points = curve["points"]
    fills = sorted(books.get("/v1/fills", params={"account_id": ACCT}).json()["items"], key=lambda f: f["ts"])
    # the opening deposit, then one point per fill (its trade cash and fee are recorded at the fill's time)
    assert [p["ts"] for p in points[1:]] == [f["ts"] for f in fills]
    assert [_dt(p["ts"]) for p in points] == sorted({_dt(p["ts"]) for p in points})
    assert points[0] == {"ts": points[0]["ts"], "equity": "10000", "cash": "10000", "market_value": "0"}
    for p in points:
        assert Decimal(p["equity"]) == Decimal(p["cash"]) + Decimal(p["market_value"])
    # after the first buy, 10 GOOG marked to the latest bar at or before the fill: 120
    assert Decimal(points[1]["market_value"]) == 10 * 120
    assert Decimal(points[1]["cash"]) == 10_000 - 1000 - 1
    # the last point is today's portfolio, to the cent
    now = books.get(f"/v1/portfolio/{ACCT}").json()
    assert Decimal(points[-1]["equity"]) == Decimal(now["equity"])
    assert Decimal(points[-1]["cash"]) == Decimal(now["cash"])
    assert Decimal(points[-1]["market_value"]) == Decimal(now["market_value"]) == 6 * 120 + 5 * 200


def test_new_bars_of_held_symbols_mark_the_curve_between_trades(books: Api) -> None:
    before = _curve(books)["points"]
    last = _dt(before[-1]["ts"])
    later = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    bars("acme", "GOOG", [130], start=later)
    bars("acme", "AAPL", [999], start=later + timedelta(minutes=1))  # never held: no point
    points = _curve(books)["points"]
    assert points[:-1] == before
    assert _dt(points[-1]["ts"]) == later
    assert Decimal(points[-1]["market_value"]) == 6 * 130 + 5 * 200
    assert points[-1]["cash"] == before[-1]["cash"]


def test_since_until_and_limit(books: Api) -> None:
    full = _curve(books)["points"]
    second, third = _dt(full[2]["ts"]), _dt(full[3]["ts"])
    since = second + (third - second) / 2
    window = _curve(books, since=since.isoformat())["points"]
    # the state at `since` first (as after the second fill), then what happened after
    assert _dt(window[0]["ts"]) == since
    assert {k: v for k, v in window[0].items() if k != "ts"} == {k: v for k, v in full[2].items() if k != "ts"}
    assert window[1:] == full[3:]
    early = _curve(books, until=third.isoformat())["points"]
    assert early == full[:3]
    thinned = _curve(books, limit=2)
    assert len(thinned["points"]) == 2 and thinned["sampled"] is True
    assert thinned["points"][-1] == full[-1]
    nothing_yet = _curve(books, until=(_dt(full[0]["ts"]) - timedelta(days=1)).isoformat())
    assert nothing_yet["points"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-01-05T14:30:00"}, "query.since"),
        ({"since": "2026-01-06T00:00:00Z", "until": "2026-01-05T00:00:00Z"}, "query.until"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 5001}, "query.limit"),
        ({"until": "yesterday"}, "query.until"),
    ],
)
def test_invalid_queries_name_the_field(books: Api, params: dict[str, Any], field: str) -> None:
    response = books.get(PATH, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field


def test_missing_and_other_tenants_accounts_are_not_found(books: Api) -> None:
    assert books.get("/v1/portfolio/nope/equity").status_code == 404
    theirs = books.get(PATH, tenant=TENANT_B)
    assert theirs.status_code == 404 and "10000" not in theirs.text
    assert theirs.json()["detail"] == books.get("/v1/portfolio/paper-2/equity").json()["detail"].replace(
        "paper-2", ACCT
    )


# -- the replay rules on hand-made records -------------------------------------------------------------


def _entry(n: int, kind: LedgerEntryKind, amount: str, at: datetime) -> LedgerEntry:
    return LedgerEntry(entry_id=f"e{n}", tenant_id="acme", account_id=ACCT, ts=at, kind=kind,
                       amount=Decimal(amount), balance_after=Decimal(0), reference=f"r{n}")  # fmt: skip


def _fill(n: int, side: str, qty: str, price: str, at: datetime) -> Fill:
    return Fill(fill_id=f"f{n}", tenant_id="acme", account_id=ACCT, client_order_id=f"o{n}", symbol="X",
                side=OrderSide(side), quantity=Decimal(qty), price=Decimal(price), ts=at,
                broker_fill_ref=str(n))  # fmt: skip


def _bar(close: str, at: datetime) -> Bar:
    c = Decimal(close)
    return Bar(symbol="X", ts=at, open=c, high=c, low=c, close=c)


def _plain(points: list[EquityPoint]) -> list[tuple[int, str, str]]:
    return [(int((p.ts - T0).total_seconds() // 60), str(p.cash), str(p.market_value)) for p in points]


def test_replay_marks_to_bars_else_fill_price_and_a_reset_flattens() -> None:
    at = [T0 + timedelta(minutes=i) for i in range(10)]
    entries = [
        _entry(0, LedgerEntryKind.DEPOSIT, "1000", at[0]),
        _entry(1, LedgerEntryKind.TRADE, "-100", at[1]),
        _entry(2, LedgerEntryKind.TRADE, "60", at[5]),
        _entry(3, LedgerEntryKind.RESET, "40", at[8]),
    ]
    fills = [_fill(1, "buy", "10", "10", at[1]), _fill(2, "sell", "5", "12", at[5])]
    series = {"X": [_bar("11", at[3]), _bar("9", at[6]), _bar("8", at[9])]}
    points = replay(entries, fills, series)
    assert _plain(points) == [
        (0, "1000", "0"),
        (1, "900", "100"),  # no bar yet: the fill's price
        (3, "900", "110"),  # the bar's close
        (5, "960", "55"),  # the bar of minute 3 still marks X (bars before fill prices)
        (6, "960", "45"),
        (8, "1000", "0"),  # the reset: cash back to the start, nothing held
    ]  # minute 9's bar changes nothing held: no point
    assert _plain(replay(entries, fills, series, since=at[2], until=at[6])) == [
        (2, "900", "100"),
        (3, "900", "110"),
        (5, "960", "55"),
    ]
    assert _plain(replay(entries, fills, series, since=at[9])) == [(9, "1000", "0")]
    assert replay(entries, fills, series, until=at[0]) == []


def test_thinning_keeps_the_last_point_of_each_slice() -> None:
    points = [EquityPoint(T0 + timedelta(minutes=i), Decimal(i), Decimal(0)) for i in range(100)]
    kept = thin(points, 10)
    assert len(kept) == 10 and kept[-1] == points[-1]
    assert [int(p.cash) for p in kept] == [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]
    assert thin(points, 100) == points
