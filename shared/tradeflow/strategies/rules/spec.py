"""The rule spec: a strategy written as data (JSON), validated by pydantic so every error names its field.

    {"name": "rsi-dip", "side": "long",
     "entry": {"all": [{"indicator": "rsi", "params": {"period": 14}, "op": "<", "value": 30},
                       {"indicator": "close", "op": ">", "other": {"indicator": "sma", "params": {"period": 200}}}]},
     "exit": {"indicator": "rsi", "params": {"period": 14}, "op": ">", "value": 55},
     "stop_loss": {"percent": 5}}

A condition is a comparison or a group: `{"all": [...]}`, `{"any": [...]}` (non-empty, nestable) or
`{"not": condition}`. A comparison is an operand (`indicator`, `params`, `output`), an `op` (`<`, `<=`,
`>`, `>=`, `crosses_above`, `crosses_below`) and exactly one of `value` (a number) or `other` (another
operand). `a crosses_above b` on a bar means a <= b on the previous bar and a > b on this one (as
`tradeflow.indicators.cross`); a comparison involving an undefined value is false.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tradeflow.domain.base import Model
from tradeflow.strategies.plan import PlanFields, TradePlan
from tradeflow.strategies.rules.operands import INDICATORS, Indicator, valid_params

Op = Literal["<", "<=", ">", ">=", "crosses_above", "crosses_below"]
CROSSES = ("crosses_above", "crosses_below")
_COMPARISON_FIELDS = ("indicator", "params", "output", "op", "value", "other")
_GROUP_FIELDS = ("all_", "any_", "not_")


def _indicator(name: str) -> Indicator:
    return INDICATORS[name]


class _OperandFields(Model):
    """`indicator` (a name), its `params` (validated by the indicator's own model; defaults filled
    in) and `output` (for indicators with several: macd, bbands, stoch, adx, donchian)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    indicator: str | None = None
    params: dict[str, Any] | None = None
    output: str | None = None

    @field_validator("indicator")
    @classmethod
    def _known(cls, name: str | None) -> str | None:
        if name is not None and name not in INDICATORS:
            raise ValueError(f"unknown indicator {name!r}; valid: {', '.join(INDICATORS)}")
        return name

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        name = info.data.get("indicator")
        if name is None or params is None:
            return params
        indicator = _indicator(name)
        unknown = sorted(set(params) - set(indicator.Params.model_fields))
        if unknown:
            raise ValueError(
                f"unknown parameter {unknown[0]!r} for {name}; valid parameters: {valid_params(indicator)}"
            )
        try:
            parsed = indicator.Params.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ValueError(f"{name}: {problems}") from None
        return parsed.model_dump()

    @field_validator("output")
    @classmethod
    def _output(cls, output: str | None, info: ValidationInfo) -> str | None:
        name = info.data.get("indicator")
        if name is None or output is None:
            return output
        indicator = _indicator(name)
        if output not in indicator.outputs:
            raise ValueError(f"unknown output {output!r} of {name}; valid outputs: {', '.join(indicator.outputs)}")
        return output

    def _check_output(self) -> None:
        if self.indicator is not None and self.output is None and _indicator(self.indicator).default_output is None:
            outputs = ", ".join(_indicator(self.indicator).outputs)
            raise ValueError(f"{self.indicator} has several outputs: give 'output' ({outputs})")

    # -- resolved views ----------------------------------------------------------------------------

    @property
    def spec(self) -> Indicator:
        assert self.indicator is not None
        return _indicator(self.indicator)

    @property
    def parsed_params(self) -> Any:
        return self.spec.Params.model_validate(self.params or {})

    @property
    def resolved_output(self) -> str:
        output = self.output or self.spec.default_output
        assert output is not None
        return output

    @property
    def key(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """Identifies the computation (indicator and full params), shared by every output."""
        return self.spec.name, tuple(sorted(self.parsed_params.model_dump().items()))

    @property
    def label(self) -> str:
        return self.spec.label(self.parsed_params, self.resolved_output)

    @property
    def lookback(self) -> int:
        return self.spec.lookback(self.parsed_params)


class Operand(_OperandFields):
    """The right-hand side of an indicator-vs-indicator comparison."""

    @model_validator(mode="after")
    def _complete(self) -> Operand:
        if self.indicator is None:
            raise ValueError("an operand needs 'indicator'")
        self._check_output()
        return self


class Condition(_OperandFields):
    """A comparison (`indicator`, `params`, `output`, `op`, `value` | `other`) or a group (`all`,
    `any`, `not`): exactly one form per object."""

    op: Op | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    other: Operand | None = None
    all_: list[Condition] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Condition] | None = Field(default=None, alias="any", min_length=1)
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        groups = [f.rstrip("_") for f in _GROUP_FIELDS if getattr(self, f) is not None]
        given = [f for f in _COMPARISON_FIELDS if getattr(self, f) is not None]
        if len(groups) > 1:
            raise ValueError(f"a condition is one group: give one of 'all', 'any', 'not', not {' and '.join(groups)}")
        if groups:
            if given:
                raise ValueError(f"a '{groups[0]}' group takes no comparison fields ({', '.join(given)})")
            return self
        if not given:
            raise ValueError("give a comparison (indicator, op, value or other) or a group (all, any, not)")
        missing = [f for f in ("indicator", "op") if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a comparison needs {' and '.join(repr(m) for m in missing)}")
        if (self.value is None) == (self.other is None):
            raise ValueError("a comparison takes exactly one of 'value' (a number) or 'other' (an operand)")
        self._check_output()
        return self

    @property
    def kind(self) -> Literal["all", "any", "not", "comparison"]:
        if self.all_ is not None:
            return "all"
        if self.any_ is not None:
            return "any"
        if self.not_ is not None:
            return "not"
        return "comparison"

    def children(self) -> list[Condition]:
        if self.all_ is not None:
            return self.all_
        if self.any_ is not None:
            return self.any_
        return [self.not_] if self.not_ is not None else []

    def comparisons(self) -> list[Condition]:
        if self.kind == "comparison":
            return [self]
        return [c for child in self.children() for c in child.comparisons()]

    def operands(self) -> list[_OperandFields]:
        return [self, *([self.other] if self.other is not None else [])]

    def describe(self) -> str:
        """The condition as one line of text, e.g. `rsi(14) < 30`."""
        if self.kind == "comparison":
            right = self.other.label if self.other is not None else f"{self.value:g}"
            return f"{self.label} {self.op} {right}"
        if self.kind == "not":
            assert self.not_ is not None
            return f"not ({self.not_.describe()})"
        return f" {self.kind} ".join(
            f"({c.describe()})" if c.kind in ("all", "any") else c.describe() for c in self.children()
        )


class RuleSpec(PlanFields):
    """A rule strategy: its signals (`entry`, `exit`, `short_entry`) and its trade plan.

    - `side: long`: `entry` buys (opens a long), `exit` sells (closes it).
    - `side: short`: `entry` sells (opens a short), `exit` buys (covers it).
    - `side: both`: `entry` buys and `short_entry` sells; each reverses the other's position, so there
      is no `exit` (positions also close by the plan's stop_loss, take_profit, trailing_stop and
      max_holding_bars).
    A bar on which both directions' conditions hold is a HOLD (the reasons say "conflict").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    entry: Condition
    exit: Condition | None = None
    short_entry: Condition | None = None

    @model_validator(mode="after")
    def _sides(self) -> RuleSpec:
        if self.side == "both":
            if self.exit is not None:
                raise ValueError(
                    "'exit' is not allowed with side 'both': positions close by the opposite entry (a reversal)"
                    " or by the plan's stop_loss, take_profit, trailing_stop or max_holding_bars"
                )
            if self.short_entry is None:
                raise ValueError("side 'both' needs 'short_entry' (the condition that sells short)")
        elif self.short_entry is not None:
            raise ValueError(
                f"'short_entry' is only for side 'both'; with side '{self.side}' 'entry' opens and 'exit' closes"
            )
        return self

    @cached_property
    def plan(self) -> TradePlan:
        """The spec's plan fields as a `TradePlan` (already validated: the spec is a `PlanFields`)."""
        return TradePlan.model_construct(**{name: getattr(self, name) for name in PlanFields.model_fields})

    def conditions(self) -> dict[str, Condition]:
        """The signal conditions by role: entry, exit / short_entry when given."""
        roles = {"entry": self.entry, "exit": self.exit, "short_entry": self.short_entry}
        return {role: c for role, c in roles.items() if c is not None}

    def signal_codes(self) -> dict[str, int]:
        """The signal each role emits: +1 buy, -1 sell."""
        if self.side == "long":
            return {"entry": 1, "exit": -1}
        if self.side == "short":
            return {"entry": -1, "exit": 1}
        return {"entry": 1, "short_entry": -1}

    @property
    def warmup(self) -> int:
        """Bars for a decision: the longest operand lookback (recursive indicators: their convergence
        lookback), +1 when a comparison is a crossing (it also needs the previous bar's values), and at
        least atr_period + 1 for the ATR every decision carries."""
        need = self.atr_period + 1
        for condition in self.conditions().values():
            for c in condition.comparisons():
                extra = 1 if c.op in CROSSES else 0
                for operand in c.operands():
                    need = max(need, operand.lookback + extra)
        return need
