"""`positions`: an account's positions, marked to the latest price, with unrealized P&L."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from tradeflow.api.context import Caller
from tradeflow.api.errors import not_found
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers._filters import AccountQuery
from tradeflow.api.views import PositionView, position_view
from tradeflow.domain import Account, Position
from tradeflow.portfolio.valuation import Valuation, timeframe_of
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import tenant_account

router = APIRouter(prefix="/positions", tags=["positions"])

AccountId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SymbolPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]


def account_or_404(tenant_id: str, account_id: str) -> Account:
    account = AccountRepository().get(tenant_id, account_id)
    if account is None:
        raise not_found("account", account_id)
    return account


@router.get("", response_model=Page[PositionView], summary="an account's positions with unrealized P&L")
def list_positions(
    caller: Caller,
    account_id: AccountQuery,
    include_flat: Annotated[bool, Query(description="also positions closed back to zero")] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[PositionView]:
    account = account_or_404(caller.tenant_id, account_id)
    valuation, now, timeframe = Valuation(), datetime.now(UTC), timeframe_of(account)
    page = query_page(
        DynamoTable("positions"),
        tenant_account(caller.tenant_id, account_id),
        Position.model_validate,
        limit=limit,
        cursor=cursor,
    )
    items = [position_view(valuation.mark(p, timeframe, now)) for p in page.items if include_flat or p.quantity != 0]
    return Page[PositionView](items=items, next_cursor=page.next_cursor)


@router.get("/{account_id}/{symbol}", response_model=PositionView, summary="one position")
def get_position(account_id: AccountId, symbol: SymbolPath, caller: Caller) -> PositionView:
    account = account_or_404(caller.tenant_id, account_id)
    item = DynamoTable("positions").get({"pk": tenant_account(caller.tenant_id, account_id), "sk": symbol})
    if item is None:
        raise not_found("position", f"{account_id}/{symbol}")
    return position_view(Valuation().mark(Position.model_validate(item), timeframe_of(account), datetime.now(UTC)))
