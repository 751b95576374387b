"""`portfolio`: per account or for all of the tenant's accounts — cash, equity, exposure (gross and
net), realized and unrealized P&L, fees, and allocation by symbol (see `tradeflow.portfolio.valuation`).
Totals across accounts add amounts as they are (accounts are assumed to share one currency).

`GET /portfolio/{account_id}/equity`: the account's equity curve, rebuilt from its recorded ledger,
fills and bars (how, exactly: `tradeflow.portfolio.equity`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tradeflow.api.context import Caller
from tradeflow.api.routers._filters import Since, Until, window
from tradeflow.api.routers.positions import AccountId, account_or_404
from tradeflow.api.views import PositionView, position_view
from tradeflow.domain.types import Money, Quantity
from tradeflow.portfolio.equity import EquityHistory
from tradeflow.portfolio.valuation import AccountPortfolio, Valuation
from tradeflow.storage.accounts import AccountRepository

router = APIRouter(prefix="/portfolio", tags=["portfolio"])
ZERO = Decimal(0)
MAX_POINTS = 5000
PointLimit = Annotated[
    int,
    Query(
        ge=1, le=MAX_POINTS, description="at most this many points: beyond it, the last point of each equal time slice"
    ),
]


class Allocation(BaseModel):
    symbol: str
    quantity: Quantity
    market_value: Money
    weight: Decimal = Field(description="share of gross exposure, 0..1")


class Summary(BaseModel):
    cash: Money
    equity: Money
    market_value: Money
    gross_exposure: Money
    net_exposure: Money
    realized_pnl: Money = Field(description="realized by positions (average cost), before fees")
    unrealized_pnl: Money
    fees: Money
    total_pnl: Money = Field(description="equity minus starting cash: net of fees")


class AccountPortfolioView(Summary):
    account_id: str
    mode: str
    currency: str
    starting_cash: Money
    allocation: list[Allocation]
    positions: list[PositionView]


class PortfolioView(BaseModel):
    as_of: datetime
    totals: Summary
    accounts: list[AccountPortfolioView]


def _summary(p: AccountPortfolio) -> dict[str, Decimal]:
    return {
        "cash": p.account.cash,
        "equity": p.equity,
        "market_value": p.market_value,
        "gross_exposure": p.gross_exposure,
        "net_exposure": p.net_exposure,
        "realized_pnl": p.realized_pnl,
        "unrealized_pnl": p.unrealized_pnl,
        "fees": p.fees,
        "total_pnl": p.total_pnl,
    }


def _view(p: AccountPortfolio) -> AccountPortfolioView:
    gross = p.gross_exposure
    held = [m for m in p.positions if m.position.quantity != 0]
    allocation = [
        Allocation(
            symbol=m.position.symbol,
            quantity=m.position.quantity,
            market_value=m.market_value,
            weight=(abs(m.market_value) / gross).quantize(Decimal("0.0001")) if gross else ZERO,
        )
        for m in sorted(held, key=lambda m: -abs(m.market_value))
    ]
    return AccountPortfolioView(
        account_id=p.account.account_id,
        mode=p.account.mode,
        currency=p.account.currency,
        starting_cash=p.account.starting_cash,
        allocation=allocation,
        positions=[position_view(m) for m in held],
        **_summary(p),
    )


@router.get("", response_model=PortfolioView, summary="every account of the tenant, with totals")
def portfolio(caller: Caller) -> PortfolioView:
    now = datetime.now(UTC)
    valuation = Valuation()
    books = [valuation.portfolio(a, now) for a in AccountRepository().list(caller.tenant_id)]
    totals = {k: sum((_summary(b)[k] for b in books), ZERO) for k in Summary.model_fields}
    return PortfolioView(as_of=now, totals=Summary(**totals), accounts=[_view(b) for b in books])


@router.get("/{account_id}", response_model=AccountPortfolioView, summary="one account's portfolio")
def account_portfolio(account_id: AccountId, caller: Caller) -> AccountPortfolioView:
    account = account_or_404(caller.tenant_id, account_id)
    return _view(Valuation().portfolio(account, datetime.now(UTC)))


class EquityPoint(BaseModel):
    ts: datetime = Field(description="when the account was in this state (a ledger entry, a fill or a bar)")
    equity: Money = Field(description="cash + market_value")
    cash: Money = Field(description="the sum of the ledger's entries up to ts")
    market_value: Money = Field(description="holdings up to ts, marked to the latest bar close (else fill price)")


class EquityCurveView(BaseModel):
    account_id: str
    currency: str
    starting_cash: Money
    timeframe: str = Field(description="the bars that mark the holdings (the account's timeframe)")
    sampled: bool = Field(description="true when the curve had more points than `limit` and was thinned")
    points: list[EquityPoint] = Field(description="oldest first")


@router.get(
    "/{account_id}/equity",
    response_model=EquityCurveView,
    summary="an account's equity curve from its recorded ledger, fills and bars",
)
def equity_curve(
    account_id: AccountId,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    limit: PointLimit = 1000,
) -> EquityCurveView:
    """The account's equity over time, oldest point first.

    Each point is the account's state at its `ts`, replayed from the records: cash is the sum of the
    capital ledger's entries up to then; holdings the signed sum of the fills up to then (a reset
    flattens them); each holding is marked to the close of the symbol's latest bar of the account's
    timeframe opened at or before then, else to its latest fill price; equity = cash + market value. A
    point is made at every ledger entry, fill, and new bar of a held symbol; with `since`, the first
    point is the state at `since`. Only points in `[since, until)`; more than `limit` are thinned to the
    last point of each of `limit` equal time slices (`sampled`: true), so each is still exact.
    """
    window(since, until)  # the same checks (timezone, range, order) as every list's time filter
    account = account_or_404(caller.tenant_id, account_id)
    curve = EquityHistory().curve(account, since, until, limit)
    return EquityCurveView(
        account_id=account.account_id,
        currency=account.currency,
        starting_cash=account.starting_cash,
        timeframe=curve.timeframe,
        sampled=curve.sampled,
        points=[EquityPoint(ts=p.ts, equity=p.equity, cash=p.cash, market_value=p.market_value) for p in curve.points],
    )
