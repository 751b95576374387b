"""`market`: the tenant's market data — the latest quote and bar history of a symbol.

Bars are the ones the platform trades on (the streamer, or the local cloud's replay, writes them per
tenant). The quote is the latest bar's close, with the bar's time; without `timeframe` it is taken from
the finest timeframe that has data. History is oldest first, `start` inclusive, `end` exclusive.
Symbols may hold a slash (`BTC/USD`): `/v1/market/BTC/USD/quote` works as written.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, field_error
from tradeflow.api.pagination import Cursor, Page, decode_cursor, encode_cursor
from tradeflow.api.routers.audit import aware
from tradeflow.domain import Bar
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS, duration
from tradeflow.domain.types import Price, UtcDatetime, iso
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import bars_pk

router = APIRouter(prefix="/market", tags=["market"])

_SYMBOL = re.compile(r"^[A-Za-z0-9._/-]{1,32}$")
Timeframe = Annotated[str | None, Query(max_length=8, description=f"one of {', '.join(TIMEFRAME_SECONDS)}")]
BarLimit = Annotated[int, Query(ge=1, le=1000, description="bars per page")]


class Quote(BaseModel):
    symbol: str
    timeframe: str = Field(description="the timeframe of the bar the price comes from")
    last_price: Price = Field(description="the latest bar's close")
    bar_time: UtcDatetime = Field(description="the latest bar's open time")
    bar: Bar


def _symbol(symbol: str) -> str:
    if not _SYMBOL.match(symbol):
        raise field_error("path.symbol", "1-32 characters of letters, digits and . _ / -")
    return symbol


def _timeframe(timeframe: str) -> str:
    try:
        duration(timeframe)
    except ValueError as exc:
        raise field_error("query.timeframe", str(exc)) from exc
    return timeframe


def _no_data(symbol: str, timeframe: str | None) -> ApiError:
    which = f"{timeframe} bars" if timeframe else "market data"
    return ApiError(404, f"no {which} for symbol {symbol!r}")


def _latest(table: DynamoTable, tenant_id: str, symbol: str, timeframe: str) -> Bar | None:
    items = table.query(bars_pk(tenant_id, symbol, timeframe), forward=False, limit=1)
    return Bar.model_validate(items[0]) if items else None


@router.get("/{symbol:path}/quote", response_model=Quote, summary="the latest price of a symbol")
def quote(symbol: str, caller: Caller, timeframe: Timeframe = None) -> Quote:
    symbol = _symbol(symbol)
    table = DynamoTable("bars")
    candidates = [_timeframe(timeframe)] if timeframe is not None else list(TIMEFRAME_SECONDS)
    for frame in candidates:
        bar = _latest(table, caller.tenant_id, symbol, frame)
        if bar is not None:
            return Quote(symbol=symbol, timeframe=frame, last_price=bar.close, bar_time=bar.ts, bar=bar)
    raise _no_data(symbol, timeframe)


@router.get("/{symbol:path}/bars", response_model=Page[Bar], summary="a symbol's bar history, oldest first")
def bars(
    symbol: str,
    caller: Caller,
    timeframe: Timeframe = "1m",
    start: Annotated[datetime | None, Query(description="bars opened at or after this time")] = None,
    end: Annotated[datetime | None, Query(description="bars opened before this time")] = None,
    limit: BarLimit = 500,
    cursor: Cursor = None,
) -> Page[Bar]:
    symbol, frame = _symbol(symbol), _timeframe(timeframe or "1m")
    since, until = aware("start", start), aware("end", end)
    if since is not None and until is not None and since >= until:
        raise field_error("query.end", "must be after start")
    partition = bars_pk(caller.tenant_id, symbol, frame)
    # DynamoDB takes one range condition per query; keys are microsecond timestamps, so `< end` is
    # `<= end - 1 µs`
    values: dict[str, str] = {}
    if since is not None:
        values[":since"] = iso(since)
    if until is not None:
        values[":before"] = iso(until - timedelta(microseconds=1))
    sk_condition = {
        (True, True): "#sk BETWEEN :since AND :before",
        (True, False): "#sk >= :since",
        (False, True): "#sk <= :before",
        (False, False): None,
    }[(since is not None, until is not None)]
    table = DynamoTable("bars")
    items, last = table.page(
        partition,
        limit=limit,
        start=decode_cursor(cursor, "pk", partition),
        sk_condition=sk_condition,
        values=values or None,
    )
    if not items and cursor is None and _latest(table, caller.tenant_id, symbol, frame) is None:
        raise _no_data(symbol, frame)
    return Page[Bar](items=[Bar.model_validate(i) for i in items], next_cursor=encode_cursor(last))
