"""`strategies`: saved strategy definitions — a registered strategy's name with its params, or a rule
spec (the `rules` strategy). Every definition is validated by constructing the strategy exactly as the
live path and the backtester do; a problem is a 422 naming the field (`body.params.fast`,
`body.spec.entry.all.1.op`). Names are unique per tenant (case-insensitive): a duplicate is a 409.
`PUT` replaces a strategy whole and must carry the `version` it read: a stale version is a 409.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, FieldError, not_found, problem_doc
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.domain.types import UtcDatetime
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.strategies import (
    RULES,
    DefinitionError,
    DuplicateName,
    SavedStrategy,
    StrategyDefinition,
    StrategyRepository,
    VersionConflict,
    filled_params,
    new_strategy_id,
    parse,
)
from tradeflow.strategies import Strategy
from tradeflow.strategies.plan import TradePlan

router = APIRouter(prefix="/strategies", tags=["strategies"])

StrategyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="a strategy id")]


class StrategyIn(BaseModel):
    """A strategy to save: a registered `strategy` with `params`, or a rule `spec`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "golden cross", "strategy": "sma_cross", "params": {"fast": 50, "slow": 200}},
                {
                    "name": "rsi dip",
                    "spec": {
                        "name": "rsi-dip",
                        "entry": {"indicator": "rsi", "params": {"period": 14}, "op": "<", "value": 30},
                        "exit": {"indicator": "rsi", "params": {"period": 14}, "op": ">", "value": 55},
                    },
                },
            ]
        },
    )

    name: str = Field(min_length=1, max_length=100, description="unique within the tenant (case-insensitive)")
    description: str = Field(default="", max_length=2000)
    strategy: str | None = Field(default=None, min_length=1, max_length=64, description="a registered strategy")
    params: dict[str, Any] | None = Field(default=None, description="its parameters; defaults fill the rest")
    spec: dict[str, Any] | None = Field(default=None, description="a rule spec (the `rules` strategy)")

    def definition(self) -> StrategyDefinition:
        return StrategyDefinition(strategy=self.strategy, params=self.params, spec=self.spec)


class StrategyReplace(StrategyIn):
    version: int = Field(ge=1, description="the version you read: the replace is refused (409) if it changed")


class DefinitionIn(BaseModel):
    """A definition to validate without saving."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = Field(default=None, min_length=1, max_length=64)
    params: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None


class StrategyOut(BaseModel):
    strategy_id: str
    name: str
    description: str
    strategy: str = Field(description="the registered strategy: `rules` for a rule spec")
    params: dict[str, Any] | None = Field(default=None, description="as saved (absent for a rule spec)")
    spec: dict[str, Any] | None = Field(default=None, description="the rule spec as saved")
    warmup: int = Field(description="bars the strategy needs for a decision")
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str
    updated_by: str

    @classmethod
    def of(cls, saved: SavedStrategy) -> StrategyOut:
        d = saved.definition
        return cls(
            strategy_id=saved.strategy_id,
            name=saved.name,
            description=saved.description,
            strategy=d.name,
            params=None if d.spec is not None else (d.params or {}),
            spec=d.spec,
            warmup=saved.warmup,
            version=saved.version,
            created_at=saved.created_at,
            updated_at=saved.updated_at,
            created_by=saved.created_by,
            updated_by=saved.updated_by,
        )


class ValidationOut(BaseModel):
    strategy: str
    warmup: int = Field(description="bars needed for a decision (a backtest needs more than this many)")
    plan: TradePlan | None = Field(description="the sides, sizing and exits the strategy prescribes, if any")
    params: dict[str, Any] = Field(description="the parameters with defaults filled (a rule spec: the spec)")


class BuiltinOut(BaseModel):
    name: str
    description: str
    params_schema: dict[str, Any] = Field(description="JSON schema of the parameters (a rule spec for `rules`)")


def definition_errors(exc: DefinitionError, prefix: str = "body") -> ApiError:
    """A definition's problems as one 422 naming each field under `prefix`."""
    errors = [FieldError(field=f"{prefix}.{field}", message=message) for field, message in exc.errors]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or "invalid strategy"
    return ApiError(422, detail, errors=errors)


def build(definition: StrategyDefinition, prefix: str = "body") -> Strategy:
    try:
        return definition.build()
    except DefinitionError as exc:
        raise definition_errors(exc, prefix) from exc


_repository = StrategyRepository()


def _now() -> datetime:
    return datetime.now(UTC)


def _duplicate(name: str) -> ApiError:
    return ApiError(409, f"a strategy named {name!r} exists already", type="conflict.duplicate_name")


def _found(tenant_id: str, strategy_id: str) -> SavedStrategy:
    saved = _repository.get(tenant_id, strategy_id)
    if saved is None:
        raise not_found("strategy", strategy_id)
    return saved


@router.get("/builtins", response_model=list[BuiltinOut], summary="the registered strategies and their parameters")
def builtins(caller: Caller) -> list[BuiltinOut]:
    from tradeflow.strategies import base, registered

    out = []
    for name in registered():
        cls = base._REGISTRY[name]
        doc = inspect.getdoc(cls) or inspect.getdoc(inspect.getmodule(cls)) or ""
        out.append(
            BuiltinOut(
                name=name,
                description=doc.split("\n\n")[0].replace("\n", " "),
                params_schema=cls.Params.model_json_schema(),
            )
        )
    return out


@router.post("/validate", response_model=ValidationOut, summary="validate a definition without saving it")
def validate(body: DefinitionIn, caller: Caller) -> ValidationOut:
    definition = StrategyDefinition(strategy=body.strategy, params=body.params, spec=body.spec)
    strategy = build(definition)
    return ValidationOut(
        strategy=definition.name, warmup=strategy.warmup, plan=strategy.plan, params=filled_params(strategy)
    )


@router.post(
    "",
    response_model=StrategyOut,
    status_code=status.HTTP_201_CREATED,
    summary="save a strategy",
    responses={409: problem_doc("a strategy of that name exists")},
)
def create_strategy(body: StrategyIn, caller: Caller, response: Response) -> StrategyOut:
    definition = body.definition()
    strategy = build(definition)
    now, actor = _now(), f"user:{caller.user_id}"
    saved = SavedStrategy(
        strategy_id=new_strategy_id(),
        tenant_id=caller.tenant_id,
        name=" ".join(body.name.split()),
        description=body.description,
        definition=definition,
        warmup=strategy.warmup,
        version=1,
        created_at=now,
        updated_at=now,
        created_by=actor,
        updated_by=actor,
    )
    audit = AuditRepository.event(
        caller.tenant_id, now, actor, "strategy.created", saved.strategy_id, {"name": saved.name}
    )
    try:
        _repository.create(saved, audit)
    except DuplicateName as exc:
        raise _duplicate(saved.name) from exc
    response.headers["Location"] = f"/v1/strategies/{saved.strategy_id}"
    return StrategyOut.of(saved)


@router.get("", response_model=Page[StrategyOut], summary="the tenant's strategies, oldest first")
def list_strategies(
    caller: Caller,
    limit: Limit = 50,
    cursor: Cursor = None,
    strategy: Annotated[str | None, Query(max_length=64, description="only this registered strategy")] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100, description="name contains (any case)")] = None,
) -> Page[StrategyOut]:
    return query_page(
        _repository.table,
        caller.tenant_id,
        lambda item: StrategyOut.of(parse(item)),
        limit=limit,
        cursor=cursor,
        **StrategyRepository.list_query(strategy, name),
    )


@router.get("/{strategy_id}", response_model=StrategyOut, summary="one strategy")
def get_strategy(strategy_id: StrategyId, caller: Caller) -> StrategyOut:
    return StrategyOut.of(_found(caller.tenant_id, strategy_id))


@router.put(
    "/{strategy_id}",
    response_model=StrategyOut,
    summary="replace a strategy (optimistic concurrency on `version`)",
    responses={409: problem_doc("stale version, or the new name is taken")},
)
def replace_strategy(strategy_id: StrategyId, body: StrategyReplace, caller: Caller) -> StrategyOut:
    previous = _found(caller.tenant_id, strategy_id)
    definition = body.definition()
    strategy = build(definition)
    if body.version != previous.version:
        raise _stale(previous.version)
    now, actor = _now(), f"user:{caller.user_id}"
    saved = previous.model_copy(
        update={
            "name": " ".join(body.name.split()),
            "description": body.description,
            "definition": definition,
            "warmup": strategy.warmup,
            "version": previous.version + 1,
            "updated_at": now,
            "updated_by": actor,
        }
    )
    audit = AuditRepository.event(
        caller.tenant_id, now, actor, "strategy.updated", strategy_id, {"name": saved.name, "version": saved.version}
    )
    try:
        _repository.replace(saved, previous, audit)
    except VersionConflict as exc:
        if exc.current is None:
            raise not_found("strategy", strategy_id) from exc
        raise _stale(exc.current) from exc
    except DuplicateName as exc:
        raise _duplicate(saved.name) from exc
    return StrategyOut.of(saved)


def _stale(current: int) -> ApiError:
    return ApiError(
        409,
        f"version conflict: the strategy is at version {current}; read it again and retry",
        type="conflict.version",
        errors=[FieldError(field="body.version", message=f"stale: current version is {current}")],
    )


@router.delete("/{strategy_id}", status_code=status.HTTP_204_NO_CONTENT, summary="delete a strategy")
def delete_strategy(strategy_id: StrategyId, caller: Caller) -> Response:
    saved = _found(caller.tenant_id, strategy_id)
    now, actor = _now(), f"user:{caller.user_id}"
    audit = AuditRepository.event(caller.tenant_id, now, actor, "strategy.deleted", strategy_id, {"name": saved.name})
    if not _repository.delete(saved, audit):
        raise not_found("strategy", strategy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__ = ["RULES", "build", "definition_errors", "router"]
