"""`deployments`: a strategy running on some symbols of an account, on a schedule.

Create one from a saved strategy (`strategy_id`) or a built-in by name with inline `params`: each
symbol gets its own EventBridge Scheduler schedule. `pause` disables the schedules, `resume` enables
them, `stop` (or DELETE) deletes them for good; each is idempotent. `status` shows, per symbol, the
latest evaluation (action, status, reasons including rule verdicts, bar time) and the schedule's state.

A `live` deployment needs a broker account: a paper account refuses it (422 naming `body.mode`). A
strategy with a trade plan (a rule spec's `sizing` and `side`) sets the risk profile's `sizing` and
`allow_short` unless the request does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, field_error, not_found, problem_doc
from tradeflow.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from tradeflow.domain import Deployment, DeploymentMode, DeploymentStatus, RiskProfile, SizingRule
from tradeflow.domain.deployments import ScheduleExpression, Symbols, Timeframe
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS
from tradeflow.domain.types import ResourceId
from tradeflow.scheduling.management import (
    DeploymentConflict,
    DeploymentManager,
    DeploymentStatusView,
    InvalidDeployment,
)
from tradeflow.storage.paging import filled_page

router = APIRouter(prefix="/deployments", tags=["deployments"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: problem_doc("the deployment is stopped (final), or another request changed it meanwhile")
}

DeploymentId = Annotated[str, Path(min_length=1, max_length=128, description="the deployment's id")]


class SizingIn(SizingRule):
    model_config = ConfigDict(extra="forbid")


class RiskIn(RiskProfile):
    """The risk profile; fields left out take their defaults (`sizing` and `allow_short`: the plan's)."""

    model_config = ConfigDict(extra="forbid")

    sizing: SizingIn = Field(default_factory=lambda: SizingIn(percent=Decimal(10)))


class CreateDeployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100, description="defaults to the strategy's name")
    strategy_id: ResourceId | None = Field(default=None, description="a saved strategy (give this or `strategy`)")
    strategy: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="a built-in's name"
    )
    params: dict[str, Any] | None = Field(default=None, description="the built-in's parameters")
    symbols: Symbols = Field(max_length=50, description="one schedule per symbol")
    account_id: ResourceId
    mode: DeploymentMode = DeploymentMode.PAPER
    schedule: ScheduleExpression = Field(
        default="rate(1 minute)", max_length=256, description="EventBridge Scheduler expression"
    )
    timeframe: Timeframe = Field(default="1m", description=f"the bars read: {', '.join(TIMEFRAME_SECONDS)}")
    risk: RiskIn | None = None
    max_bar_age_seconds: int | None = Field(default=None, gt=0, le=30 * 86400)
    paused: bool = Field(default=False, description="create with the schedules disabled")


def _manager() -> DeploymentManager:
    return DeploymentManager()


def _actor(caller: Caller) -> str:
    return f"user:{caller.user_id}"


def _owned(caller: Caller, deployment_id: str, manager: DeploymentManager) -> Deployment:
    found = manager.get(caller.tenant_id, deployment_id)
    if found is None:
        raise not_found("deployment", deployment_id)
    return found


@router.post("", response_model=Deployment, status_code=201, summary="deploy a strategy: one schedule per symbol")
def create_deployment(body: CreateDeployment, caller: Caller) -> Deployment:
    try:
        return _manager().create(
            caller.tenant_id,
            actor=_actor(caller),
            symbols=body.symbols,
            account_id=body.account_id,
            strategy_id=body.strategy_id,
            strategy=body.strategy,
            params=body.params,
            name=body.name,
            mode=body.mode,
            schedule=body.schedule,
            timeframe=body.timeframe,
            risk=body.risk.model_dump(exclude_unset=True) if body.risk is not None else None,
            max_bar_age_seconds=body.max_bar_age_seconds,
            paused=body.paused,
        )
    except InvalidDeployment as exc:
        raise field_error(exc.field, exc.message) from exc


@router.get("", response_model=Page[Deployment], summary="the tenant's deployments, filterable")
def list_deployments(
    caller: Caller,
    status: Annotated[DeploymentStatus | None, Query(description="only deployments in this status")] = None,
    account_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="only deployments on this account")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Deployment]:
    filters, names, values = [], {}, {}
    if status is not None:
        filters.append("#status = :status")
        names["#status"], values[":status"] = "status", status.value
    if account_id is not None:
        from tradeflow.api.routers.positions import account_or_404

        account_or_404(caller.tenant_id, account_id)  # an unknown account is 404, as on every resource
        filters.append("#account = :account")
        names["#account"], values[":account"] = "account_id", account_id
    manager = _manager()
    items, last = filled_page(
        manager.deployments.table,
        caller.tenant_id,
        limit=limit,
        start=decode_cursor(cursor, "pk", caller.tenant_id),
        names=names or None,
        values=values or None,
        filter_expression=" AND ".join(filters) or None,
    )
    return Page[Deployment](items=[Deployment.model_validate(i) for i in items], next_cursor=encode_cursor(last))


@router.get("/{deployment_id}", response_model=Deployment, summary="one deployment")
def get_deployment(deployment_id: DeploymentId, caller: Caller) -> Deployment:
    return _owned(caller, deployment_id, _manager())


@router.get(
    "/{deployment_id}/status",
    response_model=DeploymentStatusView,
    summary="per symbol: the latest evaluation and the schedule's state",
)
def deployment_status(deployment_id: DeploymentId, caller: Caller) -> DeploymentStatusView:
    manager = _manager()
    return manager.status(_owned(caller, deployment_id, manager))


def _transition(caller: Caller, deployment_id: str, move: str) -> Deployment:
    manager = _manager()
    deployment = _owned(caller, deployment_id, manager)
    try:
        moved: Deployment = getattr(manager, move)(deployment, _actor(caller))
    except DeploymentConflict as exc:
        raise ApiError(409, str(exc)) from exc
    return moved


@router.post(
    "/{deployment_id}/pause",
    response_model=Deployment,
    responses=_CONFLICT,
    summary="disable the schedules (idempotent)",
)
def pause_deployment(deployment_id: DeploymentId, caller: Caller) -> Deployment:
    return _transition(caller, deployment_id, "pause")


@router.post(
    "/{deployment_id}/resume",
    response_model=Deployment,
    responses=_CONFLICT,
    summary="enable the schedules (idempotent)",
)
def resume_deployment(deployment_id: DeploymentId, caller: Caller) -> Deployment:
    return _transition(caller, deployment_id, "resume")


@router.post(
    "/{deployment_id}/stop",
    response_model=Deployment,
    responses=_CONFLICT,
    summary="delete the schedules for good (idempotent)",
)
def stop_deployment(deployment_id: DeploymentId, caller: Caller) -> Deployment:
    return _transition(caller, deployment_id, "stop")


@router.delete(
    "/{deployment_id}", response_model=Deployment, responses=_CONFLICT, summary="stop the deployment (as POST .../stop)"
)
def delete_deployment(deployment_id: DeploymentId, caller: Caller) -> Deployment:
    return _transition(caller, deployment_id, "stop")
