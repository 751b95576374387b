"""`controls`: switches that stop trading at the very next risk decision.

For every user of a tenant:
- `POST /controls/kill-switch` `{active, reason}`: stops (or restarts) all of the tenant's trading.
- `POST /controls/deployments/{id}/pause` `{active, reason}`: stops one deployment's signals at the
  risk gate (signals already queued included). `POST /deployments/{id}/pause` instead stops its
  evaluations (schedules disabled); use both to stop a deployment at once and for good measure.
- `GET /controls`: the tenant's active controls and, if it is on, the global halt.

For platform admins only — `admin` is a platform role (operators of the platform, not of a tenant),
carried in the token's roles; every other caller gets 403:
- `POST /controls/global-halt` `{active, reason}`: stops every tenant's trading.
- `POST /controls/tenants/{tenant_id}/disable` `{active, reason}`: stops one tenant (any tenant).
- `GET /controls/tenants/{tenant_id}`: that tenant's controls.

Every change is written together with its audit event (`control.<scope>.activated|released`) in one
transaction. The risk function reads controls with strongly consistent reads, so a change applies to
the very next decision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from tradeflow.api.auth import Principal
from tradeflow.api.context import AdminCaller, Caller
from tradeflow.api.errors import not_found, problem_doc
from tradeflow.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from tradeflow.domain import ControlScope, TradingControl
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.control_changes import ControlChanges
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.paging import filled_page

router = APIRouter(prefix="/controls", tags=["controls"])

TenantPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the tenant's id")
]
DeploymentId = Annotated[str, Path(min_length=1, max_length=128, description="the deployment's id")]
AccountPath = Annotated[str, Path(min_length=1, max_length=128, description="the account's id")]
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {403: problem_doc("the caller lacks the platform `admin` role")}
STOPPING = (ControlScope.GLOBAL_HALT, ControlScope.TENANT_DISABLED, ControlScope.KILL_SWITCH)


class ControlChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool = Field(description="true stops trading, false lets it go on")
    reason: str = Field(default="", max_length=500, description="shown in every rejection it causes")


class ControlList(Page[TradingControl]):
    trading_halted: bool = Field(description="an active global halt, tenant disable or kill switch stops all trading")
    global_halt: TradingControl | None = Field(default=None, description="the platform's halt, when active")


def _set(caller: Principal, tenant_id: str, scope: ControlScope, change: ControlChange, target: str = "*",
         audit_tenants: tuple[str, ...] = ()) -> TradingControl:  # fmt: skip
    control = TradingControl(
        tenant_id=tenant_id,
        scope=scope,
        target=target,
        active=change.active,
        reason=change.reason,
        set_by=f"user:{caller.user_id}",
        updated_at=datetime.now(UTC),
    )
    return ControlChanges().set(control, audit_tenants=audit_tenants)


def _page(tenant_id: str, limit: int, cursor: str | None, active_only: bool) -> tuple[list[TradingControl], str | None]:
    changes = ControlChanges()
    items, last = filled_page(
        changes.table,
        tenant_id,
        limit=limit,
        start=decode_cursor(cursor, "pk", tenant_id),
        filter_expression="#active = :active" if active_only else None,
        names={"#active": "active"} if active_only else None,
        values={":active": True} if active_only else None,
    )
    return [TradingControl.model_validate(i) for i in items], encode_cursor(last)


@router.get("", response_model=ControlList, summary="the tenant's active controls (and the global halt)")
def list_controls(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> ControlList:
    items, next_cursor = _page(caller.tenant_id, limit, cursor, active_only=True)
    halt = ControlChanges().global_halt()
    halt = halt if halt is not None and halt.active else None
    stopped = halt is not None or any(c.scope in STOPPING for c in items)
    if not stopped and (cursor or next_cursor):  # the stopping controls may sit on another page
        changes = ControlChanges()
        stopped = any(
            (c := changes.get(caller.tenant_id, scope)) is not None and c.active
            for scope in (ControlScope.TENANT_DISABLED, ControlScope.KILL_SWITCH)
        )
    return ControlList(items=items, next_cursor=next_cursor, trading_halted=stopped, global_halt=halt)


@router.post("/kill-switch", response_model=TradingControl, summary="stop (or restart) all of the tenant's trading")
def kill_switch(change: ControlChange, caller: Caller) -> TradingControl:
    return _set(caller, caller.tenant_id, ControlScope.KILL_SWITCH, change)


@router.post(
    "/deployments/{deployment_id}/pause",
    response_model=TradingControl,
    summary="stop (or restart) one deployment's signals at the risk gate",
)
def pause_deployment(deployment_id: DeploymentId, change: ControlChange, caller: Caller) -> TradingControl:
    if DeploymentRepository().get(caller.tenant_id, deployment_id) is None:
        raise not_found("deployment", deployment_id)
    return _set(caller, caller.tenant_id, ControlScope.DEPLOYMENT_PAUSED, change, target=deployment_id)


@router.post(
    "/accounts/{account_id}/halt",
    response_model=TradingControl,
    summary="halt (or release) one account: what reconciliation or refused credentials set, released here",
)
def halt_account(account_id: AccountPath, change: ControlChange, caller: Caller) -> TradingControl:
    """The system halts an account when the broker refuses its credentials or reconciliation finds books it
    cannot explain (the reason is in the control); a trader may halt one too. Release it (`active: false`)
    once the cause is understood: the account's signals are rejected until then."""
    if AccountRepository().get(caller.tenant_id, account_id) is None:
        raise not_found("account", account_id)
    return _set(caller, caller.tenant_id, ControlScope.ACCOUNT_HALTED, change, target=account_id)


@router.post(
    "/global-halt",
    response_model=TradingControl,
    responses=ADMIN_ONLY,
    summary="admin: stop (or restart) every tenant's trading",
)
def global_halt(change: ControlChange, caller: AdminCaller) -> TradingControl:
    return _set(caller, GLOBAL_TENANT, ControlScope.GLOBAL_HALT, change)


@router.post(
    "/tenants/{tenant_id}/disable",
    response_model=TradingControl,
    summary="admin: stop (or restart) one tenant's trading",
    responses=ADMIN_ONLY,
)
def disable_tenant(tenant_id: TenantPath, change: ControlChange, caller: AdminCaller) -> TradingControl:
    # audited in the tenant's own trail (it sees who stopped it) and in the platform's
    return _set(caller, tenant_id, ControlScope.TENANT_DISABLED, change, audit_tenants=(GLOBAL_TENANT,))


@router.get(
    "/tenants/{tenant_id}",
    response_model=Page[TradingControl],
    responses=ADMIN_ONLY,
    summary="admin: one tenant's controls",
)
def tenant_controls(
    tenant_id: TenantPath, caller: AdminCaller, limit: Limit = 100, cursor: Cursor = None
) -> Page[TradingControl]:
    items, next_cursor = _page(tenant_id, limit, cursor, active_only=False)
    return Page[TradingControl](items=items, next_cursor=next_cursor)
