"""Key layout of every table. The tenant is the first component of every partition key."""

from __future__ import annotations

from datetime import datetime

from tradeflow.domain.types import iso


def tenant_account(tenant_id: str, account_id: str) -> str:
    return f"{tenant_id}#{account_id}"


def bars_pk(tenant_id: str, symbol: str, timeframe: str) -> str:
    return f"{tenant_id}#{symbol}#{timeframe}"


def evaluations_pk(tenant_id: str, deployment_id: str, symbol: str) -> str:
    return f"{tenant_id}#{deployment_id}#{symbol}"


def timed(ts: datetime, ident: str) -> str:
    return f"{iso(ts)}#{ident}"
