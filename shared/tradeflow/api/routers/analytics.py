"""`analytics`: round trips, win rate and P&L — overall, by month and by strategy — for one account or
all of the tenant's accounts. How a round trip is defined: see `tradeflow.portfolio.analytics`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tradeflow.api.context import Caller
from tradeflow.api.routers._filters import Since, Until, window
from tradeflow.api.routers.positions import account_or_404
from tradeflow.domain.types import Money
from tradeflow.portfolio.analytics import Bucket, analyse
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.orders import OrderRepository

router = APIRouter(prefix="/analytics", tags=["analytics"])


class Stats(BaseModel):
    key: str = Field(description="month (YYYY-MM), strategy name, or 'all'")
    round_trips: int
    wins: int
    losses: int
    win_rate: Decimal | None = Field(description="wins / round trips, 0..1; null without round trips")
    pnl: Money = Field(description="realized P&L net of fees")
    fees: Money


class AnalyticsView(BaseModel):
    account_id: str | None
    round_trip_definition: str
    total: Stats
    by_month: list[Stats]
    by_strategy: list[Stats]
    open_round_trips: int


DEFINITION = (
    "a position's life per (account, symbol) from flat to flat; net P&L = realized P&L minus fees; "
    "win = net P&L > 0; counted in the UTC month it closed, for the strategy of its opening order"
)


def _stats(bucket: Bucket) -> Stats:
    return Stats(
        key=bucket.key,
        round_trips=bucket.round_trips,
        wins=bucket.wins,
        losses=bucket.losses,
        win_rate=bucket.win_rate,
        pnl=bucket.pnl,
        fees=bucket.fees,
    )


@router.get("", response_model=AnalyticsView, summary="win rate and P&L by month and by strategy")
def analytics(
    caller: Caller,
    account_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
    since: Since = None,
    until: Until = None,
) -> AnalyticsView:
    window(since, until)  # validates the pair
    tenant = caller.tenant_id
    if account_id is not None:
        accounts = [account_or_404(tenant, account_id).account_id]
    else:
        accounts = [a.account_id for a in AccountRepository().list(tenant)]
    fills, orders = [], []
    for acct in accounts:
        fills.extend(FillRepository().list(tenant, acct))
        orders.extend(OrderRepository().list_for_account(tenant, acct))
    strategies = {d.deployment_id: d.strategy for d in DeploymentRepository().list(tenant)}
    result = analyse(fills, orders, strategies, since=since, until=until)
    return AnalyticsView(
        account_id=account_id,
        round_trip_definition=DEFINITION,
        total=_stats(result.total),
        by_month=[_stats(b) for b in result.by_month],
        by_strategy=[_stats(b) for b in result.by_strategy],
        open_round_trips=result.open_round_trips,
    )
