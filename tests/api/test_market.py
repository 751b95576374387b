"""`market`: the latest quote (the latest bar's close) and bar history (oldest first, paged, by time),
tenant-scoped; unknown symbols are 404 naming the symbol, unknown timeframes 422 listing the known."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from apiclient import TENANT_A, TENANT_B, Api
from helpers import T0, bars


@pytest.fixture
def market(api: Api) -> Api:
    bars(TENANT_A, "GOOG", [100 + i for i in range(10)])
    bars(TENANT_A, "GOOG", [50, 55], timeframe="1h")
    bars(TENANT_A, "BTC/USD", [42000.5, 42100.25])
    bars(TENANT_B, "GOOG", [999])
    return api


def test_quote_is_the_latest_close_of_the_finest_timeframe(market: Api) -> None:
    quote = market.get("/v1/market/GOOG/quote")
    assert quote.status_code == 200, quote.json()
    body = quote.json()
    assert (body["symbol"], body["timeframe"], body["last_price"]) == ("GOOG", "1m", "109")
    assert body["bar_time"] == "2026-01-05T14:39:00.000000Z" and body["bar"]["close"] == "109"
    assert market.get("/v1/market/GOOG/quote", params={"timeframe": "1h"}).json()["last_price"] == "55"
    assert market.get("/v1/market/GOOG/quote", TENANT_B).json()["last_price"] == "999"  # its own bars
    assert market.get("/v1/market/BTC/USD/quote").json()["last_price"] == "42100.25"


def test_bars_oldest_first_with_a_time_range(market: Api) -> None:
    page = market.get("/v1/market/GOOG/bars").json()
    assert [b["close"] for b in page["items"]] == [str(100 + i) for i in range(10)] and page["next_cursor"] is None
    start, end = (T0 + timedelta(minutes=2)).isoformat(), (T0 + timedelta(minutes=5)).isoformat()
    closes = [
        b["close"] for b in market.get("/v1/market/GOOG/bars", params={"start": start, "end": end}).json()["items"]
    ]
    assert closes == ["102", "103", "104"]
    assert len(market.get("/v1/market/GOOG/bars", params={"start": start}).json()["items"]) == 8
    assert len(market.get("/v1/market/GOOG/bars", params={"end": end}).json()["items"]) == 5
    hourly = market.get("/v1/market/GOOG/bars", params={"timeframe": "1h"}).json()["items"]
    assert [b["close"] for b in hourly] == ["50", "55"] and hourly[0]["timeframe"] == "1h"
    later = (T0 + timedelta(days=1)).isoformat()
    assert market.get("/v1/market/GOOG/bars", params={"start": later}).json() == {"items": [], "next_cursor": None}


def test_bars_page(market: Api) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = market.get("/v1/market/GOOG/bars", params=params).json()
        seen += [b["close"] for b in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(100 + i) for i in range(10)]
    cursor = market.get("/v1/market/GOOG/bars", params={"limit": 3}).json()["next_cursor"]
    refused = market.get("/v1/market/GOOG/bars", TENANT_B, params={"cursor": cursor})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize("path", ["/v1/market/ZZZ/quote", "/v1/market/ZZZ/bars"])
def test_unknown_symbol_is_404_naming_it(market: Api, path: str) -> None:
    response = market.get(path)
    assert response.status_code == 404 and "'ZZZ'" in response.json()["detail"]


def test_another_tenant_s_symbol_is_not_found(market: Api) -> None:
    assert market.get("/v1/market/BTC/USD/quote", TENANT_B).status_code == 404
    assert market.get("/v1/market/BTC/USD/bars", TENANT_B).status_code == 404


def test_a_symbol_without_that_timeframe_is_404(market: Api) -> None:
    response = market.get("/v1/market/BTC/USD/quote", params={"timeframe": "1d"})
    assert response.status_code == 404 and "'BTC/USD'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/market/GOOG/quote", {"timeframe": "7m"}, "query.timeframe"),
        ("/v1/market/GOOG/bars", {"timeframe": "7m"}, "query.timeframe"),
        ("/v1/market/GOOG/bars", {"start": "2026-01-05T14:30:00"}, "query.start"),
        ("/v1/market/GOOG/bars", {"start": "2026-01-05T15:00:00Z", "end": "2026-01-05T14:00:00Z"}, "query.end"),
        ("/v1/market/GOOG/bars", {"limit": 0}, "query.limit"),
        ("/v1/market/GO OG/quote", {}, "path.symbol"),
        (f"/v1/market/{'X' * 33}/bars", {}, "path.symbol"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(market: Api, path: str, params: dict[str, Any], field: str) -> None:
    response = market.get(path, params=params)
    assert response.status_code == 422 and field in [e["field"] for e in response.json()["errors"]]


def test_a_bad_timeframe_lists_the_known_ones(market: Api) -> None:
    detail = market.get("/v1/market/GOOG/bars", params={"timeframe": "7m"}).json()["detail"]
    assert "known: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w, 1mo" in detail
