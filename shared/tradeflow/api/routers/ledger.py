"""`ledger`: an account's cash movements (deposits, trades, fees, resets), newest first."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from tradeflow.api.context import Caller
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers._filters import AccountQuery, Since, SymbolQuery, Until, window
from tradeflow.api.routers.positions import account_or_404
from tradeflow.domain import LedgerEntry, LedgerEntryKind
from tradeflow.domain.types import Money
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import tenant_account

router = APIRouter(prefix="/ledger", tags=["ledger"])


class LedgerEntryView(BaseModel):
    entry_id: str
    account_id: str
    ts: str
    kind: LedgerEntryKind
    amount: Money
    balance_after: Money
    reference: str
    symbol: str | None = None
    realized_pnl: Money | None = None


def _view(item: dict[str, object]) -> LedgerEntryView:
    entry = LedgerEntry.model_validate(item)
    return LedgerEntryView(**entry.model_dump(mode="json", exclude={"tenant_id"}))


@router.get("", response_model=Page[LedgerEntryView], summary="an account's ledger, newest first")
def list_ledger(
    caller: Caller,
    account_id: AccountQuery,
    kind: LedgerEntryKind | None = None,
    symbol: SymbolQuery = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[LedgerEntryView]:
    account_or_404(caller.tenant_id, account_id)
    sk_condition, values = window(since, until)
    filters, names = [], {}
    if kind is not None:
        filters.append("#kind = :kind")
        names["#kind"], values[":kind"] = "kind", kind.value
    if symbol is not None:
        filters.append("#symbol = :symbol")
        names["#symbol"], values[":symbol"] = "symbol", symbol
    return query_page(
        DynamoTable("ledger"),
        tenant_account(caller.tenant_id, account_id),
        _view,
        limit=limit,
        cursor=cursor,
        sk_condition=sk_condition,
        values=values,
        forward=False,
        filter_expression=" AND ".join(filters) or None,
        names=names or None,
    )
