"""`fills`: an account's executions, newest first, filtered by symbol, side and time."""

from __future__ import annotations

from fastapi import APIRouter

from tradeflow.api.context import Caller
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers._filters import AccountQuery, Since, SymbolQuery, Until, window
from tradeflow.api.routers.positions import account_or_404
from tradeflow.api.views import FillView, fill_view
from tradeflow.domain import OrderSide
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import tenant_account

router = APIRouter(prefix="/fills", tags=["fills"])


@router.get("", response_model=Page[FillView], summary="an account's fills, newest first")
def list_fills(
    caller: Caller,
    account_id: AccountQuery,
    symbol: SymbolQuery = None,
    side: OrderSide | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[FillView]:
    account_or_404(caller.tenant_id, account_id)
    sk_condition, values = window(since, until)
    filters, names = [], {}
    if symbol is not None:
        filters.append("#symbol = :symbol")
        names["#symbol"], values[":symbol"] = "symbol", symbol
    if side is not None:
        filters.append("#side = :side")
        names["#side"], values[":side"] = "side", side.value
    return query_page(
        DynamoTable("fills"),
        tenant_account(caller.tenant_id, account_id),
        fill_view,
        limit=limit,
        cursor=cursor,
        index="by_time",
        sk_condition=sk_condition,
        values=values,
        forward=False,
        filter_expression=" AND ".join(filters) or None,
        names=names or None,
    )
