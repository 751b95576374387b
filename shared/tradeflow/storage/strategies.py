"""Saved strategies: the definition a trader saves (a built-in name + params, or a rule spec), its
validation by construction, and the repository.

Key layout (table `strategies`, pk = tenant):
- `strategy#<id>`: the saved strategy (`SavedStrategy`), with an integer `version` for optimistic
  concurrency (a replace is conditional on the version the caller read).
- `name#<name key>`: a name claim holding the strategy id; names are unique per tenant, compared
  case-insensitively with runs of whitespace collapsed. Claims are written in the same transaction as
  the strategy, so two creates of one name cannot both win.
Every change also writes its audit event in that transaction.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, ValidationError

from tradeflow.domain.base import Model
from tradeflow.domain.types import ResourceId, TenantId, UtcDatetime
from tradeflow.storage.dynamo import DynamoTable, TransactionConflict, Write, model_item, transact

if TYPE_CHECKING:
    from tradeflow.domain import AuditEvent
    from tradeflow.strategies import Strategy

RULES = "rules"
STRATEGY_PREFIX = "strategy#"
NAME_PREFIX = "name#"


class DefinitionError(ValueError):
    """A definition that does not construct: one (field, message) per problem, the field relative to
    the definition (`strategy`, `params.fast`, `spec.entry.all.1.op`)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class StrategyDefinition(Model):
    """What a strategy is: EITHER a registered strategy's name (`strategy`) with its `params`, OR a
    rule spec (`spec`, the `rules` strategy; `strategy` is then omitted or "rules")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str | None = Field(
        default=None, min_length=1, max_length=64, description="a registered strategy (GET /v1/strategies/builtins)"
    )
    params: dict[str, Any] | None = Field(default=None, description="the strategy's parameters (defaults fill gaps)")
    spec: dict[str, Any] | None = Field(default=None, description="a rule spec (see examples/strategies/*.json)")

    @property
    def name(self) -> str:
        return RULES if self.spec is not None else (self.strategy or "")

    @property
    def arguments(self) -> dict[str, Any]:
        """What `create(name, ...)` takes: the spec for `rules`, else the params."""
        if self.spec is not None:
            return self.spec
        return self.params or {}

    def shape_errors(self) -> list[tuple[str, str]]:
        if self.spec is not None:
            errors = []
            if self.strategy not in (None, RULES):
                errors.append(("strategy", f"a rule spec is the '{RULES}' strategy: omit 'strategy' or give '{RULES}'"))
            if self.params is not None:
                errors.append(("params", "a rule strategy takes no params: its whole definition is 'spec'"))
            return errors
        if self.strategy is None:
            return [("strategy", "give a registered strategy's name (with 'params'), or a rule spec in 'spec'")]
        if self.strategy == RULES:
            return [("spec", f"the '{RULES}' strategy is defined by a rule spec: give it in 'spec'")]
        return []

    def build(self) -> Strategy:
        """The strategy, constructed exactly as the live path and the backtester construct it; any
        problem is a `DefinitionError` naming the field."""
        from tradeflow.strategies import StrategyError, create

        shape = self.shape_errors()
        if shape:
            raise DefinitionError(shape)
        root = "spec" if self.spec is not None else "params"
        try:
            return create(self.name, self.arguments)
        except StrategyError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise DefinitionError(
                    [(_field(root, e["loc"]), str(e["msg"]).removeprefix("Value error, ")) for e in cause.errors()]
                ) from exc
            field = "strategy" if str(exc).startswith("unknown strategy") else root
            raise DefinitionError([(field, str(exc))]) from exc
        except (ValueError, TypeError, KeyError) as exc:  # a strategy's own constructor refusing its params
            raise DefinitionError([(root, f"{type(exc).__name__}: {exc}")]) from exc


def _field(root: str, loc: tuple[int | str, ...]) -> str:
    return ".".join([root, *map(str, loc)])


def filled_params(strategy: Strategy) -> dict[str, Any]:
    """The strategy's parameters with defaults filled (a rule spec as its JSON document)."""
    if strategy.name == RULES:
        return strategy.params.model_dump(mode="json", by_alias=True, exclude_none=True)
    return strategy.params.model_dump(mode="json")


class SavedStrategy(Model):
    strategy_id: ResourceId
    tenant_id: TenantId
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    definition: StrategyDefinition
    warmup: int
    version: int = Field(ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str
    updated_by: str


class DuplicateName(Exception):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int | None) -> None:
        super().__init__(f"current version {current}")
        self.current = current  # None: the strategy does not exist (any more)


def new_strategy_id() -> str:
    """`stg_` + creation time (ms, hex; ids sort by creation) + randomness."""
    return f"stg_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def strategy_sk(strategy_id: str) -> str:
    return STRATEGY_PREFIX + strategy_id


def name_sk(name: str) -> str:
    return NAME_PREFIX + name_key(name)


class StrategyRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("strategies")

    def _item(self, saved: SavedStrategy) -> dict[str, Any]:
        # The definition is kept as its JSON text: a DynamoDB map would turn its numbers into decimals
        # (30.5 would come back as Decimal("30.5") and leave the API as the string "30.5").
        return model_item(
            saved,
            pk=saved.tenant_id,
            sk=strategy_sk(saved.strategy_id),
            kind=saved.definition.name,
            name_key=name_key(saved.name),
            definition=saved.definition.model_dump_json(exclude_none=True),
        )

    def _claim(self, saved: SavedStrategy) -> Write:
        item = {"pk": saved.tenant_id, "sk": name_sk(saved.name), "strategy_id": saved.strategy_id}
        return Write("strategies", "Put", item=item, condition="attribute_not_exists(pk)")

    def get(self, tenant_id: str, strategy_id: str) -> SavedStrategy | None:
        item = self.table.get({"pk": tenant_id, "sk": strategy_sk(strategy_id)})
        return parse(item) if item else None

    def create(self, saved: SavedStrategy, audit: AuditEvent) -> None:
        """Raises DuplicateName when the tenant has a strategy of that name."""
        from tradeflow.storage.audit import AuditRepository

        writes = [
            Write("strategies", "Put", item=self._item(saved), condition="attribute_not_exists(pk)"),
            self._claim(saved),
            AuditRepository().new_write(audit),
        ]
        try:
            transact(writes)
        except TransactionConflict as exc:
            if exc.reasons[1:2] == ["ConditionalCheckFailed"]:
                raise DuplicateName(saved.name) from exc
            raise

    def replace(self, saved: SavedStrategy, previous: SavedStrategy, audit: AuditEvent) -> None:
        """Write `saved` over `previous` if the stored version is still `previous.version`.
        Raises VersionConflict (with the current version) or DuplicateName (a rename onto a taken name)."""
        from tradeflow.storage.audit import AuditRepository

        writes = [
            Write(
                "strategies",
                "Put",
                item=self._item(saved),
                condition="#version = :expected",
                names={"#version": "version"},
                values={":expected": previous.version},
            )
        ]
        renamed = name_key(saved.name) != name_key(previous.name)
        if renamed:
            writes.append(self._claim(saved))
            writes.append(
                Write(
                    "strategies",
                    "Delete",
                    key={"pk": previous.tenant_id, "sk": name_sk(previous.name)},
                    condition="strategy_id = :id",
                    values={":id": previous.strategy_id},
                )
            )
        writes.append(AuditRepository().new_write(audit))
        try:
            transact(writes)
        except TransactionConflict as exc:
            if exc.reasons[:1] == ["ConditionalCheckFailed"]:
                current = self.get(saved.tenant_id, saved.strategy_id)
                raise VersionConflict(current.version if current else None) from exc
            if renamed and exc.reasons[1:2] == ["ConditionalCheckFailed"]:
                raise DuplicateName(saved.name) from exc
            raise

    def delete(self, saved: SavedStrategy, audit: AuditEvent) -> bool:
        """Delete the strategy and its name claim; False when it was already gone."""
        from tradeflow.storage.audit import AuditRepository

        writes = [
            Write(
                "strategies",
                "Delete",
                key={"pk": saved.tenant_id, "sk": strategy_sk(saved.strategy_id)},
                condition="attribute_exists(pk)",
            ),
            Write(
                "strategies",
                "Delete",
                key={"pk": saved.tenant_id, "sk": name_sk(saved.name)},
                condition="attribute_not_exists(pk) OR strategy_id = :id",
                values={":id": saved.strategy_id},
            ),
            AuditRepository().new_write(audit),
        ]
        try:
            transact(writes)
        except TransactionConflict as exc:
            if exc.reasons[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    @staticmethod
    def list_query(strategy: str | None = None, name: str | None = None) -> dict[str, Any]:
        """`DynamoTable.page` arguments listing a tenant's strategies (oldest first), optionally only
        those of one registered `strategy` and/or whose name contains `name` (case-insensitive)."""
        values: dict[str, Any] = {":prefix": STRATEGY_PREFIX}
        names: dict[str, str] = {}
        filters = []
        if strategy is not None:
            filters.append("#kind = :kind")
            names["#kind"] = "kind"
            values[":kind"] = strategy
        if name is not None:
            filters.append("contains(#name_key, :name)")
            names["#name_key"] = "name_key"
            values[":name"] = name_key(name)
        query: dict[str, Any] = {"sk_condition": "begins_with(#sk, :prefix)", "values": values}
        if filters:
            query["filter_expression"] = " AND ".join(filters)
            query["names"] = names
        return query


def parse(item: dict[str, Any]) -> SavedStrategy:
    data = {k: v for k, v in item.items() if k not in ("pk", "sk", "kind", "name_key")}
    data["definition"] = StrategyDefinition.model_validate_json(data["definition"])
    return SavedStrategy.model_validate(data)


__all__ = [
    "DefinitionError",
    "DuplicateName",
    "SavedStrategy",
    "StrategyDefinition",
    "StrategyRepository",
    "VersionConflict",
    "filled_params",
    "new_strategy_id",
    "parse",
]
