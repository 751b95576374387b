"""The deployment lifecycle as the API drives it: create, pause, resume, stop, status.

A deployment runs a strategy — a saved one (`storage.strategies`), or a registered one by name with
inline parameters — on some symbols of one of the tenant's accounts, each symbol evaluated by its own
EventBridge Scheduler schedule (`DeploymentService`). The saved strategy's definition is copied into
the deployment: editing the strategy later does not change what a running deployment trades.

When the strategy brings a trade plan (`Strategy.plan`: a rule spec's `sizing` and `side`), the risk
profile's `sizing` and `allow_short` default to the plan's unless the request sets them.

Transitions: active -> paused (schedules disabled) -> active (enabled); any -> stopped (schedules
deleted; final). Repeating a transition is a no-op that re-applies the schedules' state, so a call that
died half-way is finished by its retry. Pausing or resuming a stopped deployment is a conflict.

Errors are data for the caller to translate: `InvalidDeployment` (a field and why), `DeploymentConflict`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from tradeflow.catalogue import schedule_group_name
from tradeflow.domain import Deployment, DeploymentMode, DeploymentStatus, Evaluation, RiskProfile
from tradeflow.domain.base import Model
from tradeflow.runtime.aws import client
from tradeflow.scheduling.deployments import DeploymentService
from tradeflow.scheduling.schedules import delete_schedules, put_schedules, schedule_name
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.dynamo import ConditionFailed
from tradeflow.storage.evaluations import EvaluationRepository
from tradeflow.storage.strategies import StrategyRepository
from tradeflow.strategies.plan import TradePlan

# --- errors --------------------------------------------------------------------------------------


class InvalidDeployment(ValueError):
    """A request that cannot become a deployment; `field` names the request field (body.x.y)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class DeploymentConflict(Exception):
    """A transition the deployment's current status does not allow."""


# --- status --------------------------------------------------------------------------------------

ScheduleState = Literal["ENABLED", "DISABLED", "absent"]


class SymbolStatus(Model):
    symbol: str
    schedule_name: str
    schedule_state: ScheduleState = Field(description="the schedule in EventBridge Scheduler; absent once stopped")
    latest_evaluation: Evaluation | None = Field(
        default=None, description="the last evaluation: action, status, reasons (incl. rule verdicts), bar time"
    )


class DeploymentStatusView(Model):
    deployment: Deployment
    symbols: list[SymbolStatus]


# --- the service ---------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeploymentManager:
    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock
        self.service = DeploymentService()
        self.deployments = self.service.repository
        self.accounts = AccountRepository()
        self.strategies = StrategyRepository()
        self.evaluations = EvaluationRepository()

    # -- create ---------------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        *,
        actor: str,
        symbols: Sequence[str],
        account_id: str,
        strategy_id: str | None = None,
        strategy: str | None = None,
        params: Mapping[str, Any] | None = None,
        name: str = "",
        mode: DeploymentMode = DeploymentMode.PAPER,
        schedule: str = "rate(1 minute)",
        timeframe: str = "1m",
        risk: Mapping[str, Any] | None = None,
        max_bar_age_seconds: int | None = None,
        paused: bool = False,
    ) -> Deployment:
        """A new deployment and its schedules. `risk` holds only the risk profile fields the caller set."""
        name, strategy_name, strategy_params, source = self._strategy(tenant_id, strategy_id, strategy, params, name)
        account = self.accounts.get(tenant_id, account_id)
        if account is None:
            raise InvalidDeployment("body.account_id", f"account {account_id!r} not found")
        if mode is DeploymentMode.LIVE and account.broker == "paper":
            raise InvalidDeployment(
                "body.mode", f"account {account_id!r} is a paper account: live needs a broker account"
            )
        from tradeflow.strategies import StrategyError, create

        try:
            plan = create(strategy_name, strategy_params).plan
        except StrategyError as exc:
            raise InvalidDeployment("body.strategy_id" if strategy_id else "body.params", str(exc)) from exc
        profile = self._risk(dict(risk or {}), plan)
        now = self.clock()
        try:
            deployment = Deployment(
                tenant_id=tenant_id,
                deployment_id="dep_" + uuid.uuid4().hex[:20],
                name=name,
                strategy=strategy_name,
                params=strategy_params,
                symbols=list(symbols),
                account_id=account_id,
                mode=mode,
                schedule=schedule,
                timeframe=timeframe,
                risk=profile,
                status=DeploymentStatus.PAUSED if paused else DeploymentStatus.ACTIVE,
                max_bar_age_seconds=max_bar_age_seconds,
                created_at=now,
                updated_at=now,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidDeployment(".".join(["body", *map(str, first["loc"])]), first["msg"]) from exc
        self.service.deploy(deployment, actor=actor, details={"strategy": strategy_name, **source})
        return deployment

    def _strategy(
        self,
        tenant_id: str,
        strategy_id: str | None,
        strategy: str | None,
        params: Mapping[str, Any] | None,
        name: str,
    ) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        """(deployment name, strategy name, params, where they came from) of the request."""
        if (strategy_id is None) == (strategy is None):
            raise InvalidDeployment("body.strategy_id", "give exactly one of 'strategy_id' or 'strategy'")
        if strategy is not None:
            return name or strategy, strategy, dict(params or {}), {}
        if params:
            raise InvalidDeployment("body.params", "a saved strategy brings its own params; omit 'params'")
        assert strategy_id is not None
        saved = self.strategies.get(tenant_id, strategy_id)
        if saved is None:
            raise InvalidDeployment("body.strategy_id", f"strategy {strategy_id!r} not found")
        definition = saved.definition
        source = {"strategy_id": strategy_id, "version": saved.version}
        return name or saved.name, definition.name, dict(definition.arguments), source

    @staticmethod
    def _risk(given: dict[str, Any], plan: TradePlan | None) -> RiskProfile:
        """The requested risk profile, its unset `sizing` and `allow_short` taken from the plan."""
        if plan is not None:
            if "sizing" not in given and plan.sizing is not None:
                given["sizing"] = plan.sizing
            if "allow_short" not in given:
                given["allow_short"] = plan.side != "long"
        try:
            return RiskProfile.model_validate(given)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidDeployment(".".join(["body.risk", *map(str, first["loc"])]), first["msg"]) from exc

    # -- lifecycle ------------------------------------------------------------------------------

    def get(self, tenant_id: str, deployment_id: str) -> Deployment | None:
        return self.deployments.get(tenant_id, deployment_id)

    def pause(self, deployment: Deployment, actor: str) -> Deployment:
        return self._move(deployment, DeploymentStatus.PAUSED, actor)

    def resume(self, deployment: Deployment, actor: str) -> Deployment:
        return self._move(deployment, DeploymentStatus.ACTIVE, actor)

    def stop(self, deployment: Deployment, actor: str) -> Deployment:
        return self._move(deployment, DeploymentStatus.STOPPED, actor)

    def _move(self, deployment: Deployment, target: DeploymentStatus, actor: str) -> Deployment:
        if deployment.status is target:  # a repeat: finish what a failed earlier call may have left
            if target is DeploymentStatus.STOPPED:
                delete_schedules(deployment)
            else:
                put_schedules(deployment, enabled=target is DeploymentStatus.ACTIVE)
            return deployment
        if deployment.status is DeploymentStatus.STOPPED:
            raise DeploymentConflict(f"deployment {deployment.deployment_id} is stopped; create a new one")
        now = self.clock()
        try:
            self.service.set_status(deployment, target, now, actor=actor, expected=deployment.status)
        except ConditionFailed as exc:
            raise DeploymentConflict(
                f"deployment {deployment.deployment_id} was changed by another request; read it and retry"
            ) from exc
        return deployment.model_copy(update={"status": target, "updated_at": now})

    # -- status ---------------------------------------------------------------------------------

    def status(self, deployment: Deployment) -> DeploymentStatusView:
        symbols = []
        for symbol in deployment.symbols:
            name = schedule_name(deployment.tenant_id, deployment.deployment_id, symbol)
            latest = self.evaluations.latest(deployment.tenant_id, deployment.deployment_id, symbol)
            symbols.append(
                SymbolStatus(
                    symbol=symbol,
                    schedule_name=name,
                    schedule_state=schedule_state(name),
                    latest_evaluation=latest[0] if latest else None,
                )
            )
        return DeploymentStatusView(deployment=deployment, symbols=symbols)


def schedule_state(name: str) -> ScheduleState:
    scheduler = client("scheduler")
    try:
        found = scheduler.get_schedule(Name=name, GroupName=schedule_group_name())
    except scheduler.exceptions.ResourceNotFoundException:
        return "absent"
    return "ENABLED" if found.get("State") == "ENABLED" else "DISABLED"
