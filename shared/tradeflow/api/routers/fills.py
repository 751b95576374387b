"""`fills`: an account's executions, newest first, filtered by symbol, side and time."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from tradeflow.api.context import Caller
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers._filters import AccountQuery, Since, SymbolQuery, Until, window
from tradeflow.api.routers.positions import account_or_404
from tradeflow.domain import Fill, OrderSide
from tradeflow.domain.types import Price, Quantity
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import tenant_account

router = APIRouter(prefix="/fills", tags=["fills"])


class FillView(BaseModel):
    fill_id: str
    account_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: Quantity
    price: Price
    fee: Price
    notional: Price
    ts: str


def _view(item: dict[str, object]) -> FillView:
    fill = Fill.model_validate(item)
    data = fill.model_dump(mode="json", exclude={"tenant_id", "broker_fill_ref"})
    return FillView(**data, notional=fill.notional)


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
        _view,
        limit=limit,
        cursor=cursor,
        index="by_time",
        sk_condition=sk_condition,
        values=values,
        forward=False,
        filter_expression=" AND ".join(filters) or None,
        names=names or None,
    )
