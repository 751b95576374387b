"""The live evaluation of a rule spec: plain Python over the window's columns (no numpy import).

The spec is compiled once into a small tree (`compile_spec`); `decide` evaluates it on the columns of a
window (open, high, low, close, volume; oldest first), computing each distinct indicator once, and
explains the decision: every condition with its result and the values it compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tradeflow.strategies.rules.operands import Columns, Indicator
from tradeflow.strategies.rules.spec import CROSSES, Condition, RuleSpec, _OperandFields


@dataclass(frozen=True)
class CompiledOperand:
    key: tuple[str, tuple[tuple[str, Any], ...]]
    indicator: Indicator
    params: Any
    output: str
    label: str

    @classmethod
    def of(cls, operand: _OperandFields) -> CompiledOperand:
        return cls(operand.key, operand.spec, operand.parsed_params, operand.resolved_output, operand.label)


@dataclass(frozen=True)
class CompiledComparison:
    left: CompiledOperand
    op: str
    right: CompiledOperand | float
    text: str


@dataclass(frozen=True)
class CompiledGroup:
    kind: str  # all | any | not
    children: tuple[CompiledNode, ...]
    text: str


CompiledNode = CompiledComparison | CompiledGroup


@dataclass(frozen=True)
class CompiledSpec:
    roles: dict[str, CompiledNode]  # entry, exit / short_entry
    codes: dict[str, int]
    side: str
    warmup: int
    atr_period: int
    operands: tuple[CompiledOperand, ...] = field(default=())


def _compile(condition: Condition) -> CompiledNode:
    if condition.kind == "comparison":
        assert condition.op is not None
        if condition.other is not None:
            right: CompiledOperand | float = CompiledOperand.of(condition.other)
        else:
            assert condition.value is not None
            right = float(condition.value)
        return CompiledComparison(CompiledOperand.of(condition), condition.op, right, condition.describe())
    return CompiledGroup(condition.kind, tuple(_compile(c) for c in condition.children()), condition.describe())


def compile_spec(spec: RuleSpec) -> CompiledSpec:
    roles = {role: _compile(c) for role, c in spec.conditions().items()}
    operands: dict[Any, CompiledOperand] = {}
    for node in roles.values():
        for comparison in comparisons(node):
            for operand in (comparison.left, comparison.right):
                if isinstance(operand, CompiledOperand):
                    operands.setdefault((operand.key, operand.output), operand)
    return CompiledSpec(roles, spec.signal_codes(), spec.side, spec.warmup, spec.atr_period, tuple(operands.values()))


def comparisons(node: CompiledNode) -> list[CompiledComparison]:
    if isinstance(node, CompiledComparison):
        return [node]
    return [c for child in node.children for c in comparisons(child)]


def compare(op: str, prev_a: float, prev_b: float, a: float, b: float) -> bool:
    """One comparison on plain floats; False wherever a NaN is involved."""
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "crosses_above":
        return prev_a <= prev_b and a > b
    return prev_a >= prev_b and a < b


def _plain(value: float) -> float | str:
    """A JSON-safe number for the reasons ('n/a' while undefined)."""
    return "n/a" if math.isnan(value) or math.isinf(value) else round(value, 6)


class _Values:
    """Indicator outputs of one window, each computed once."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self._cache: dict[Any, dict[str, tuple[float, float]]] = {}

    def get(self, operand: CompiledOperand) -> tuple[float, float]:
        outputs = self._cache.get(operand.key)
        if outputs is None:
            outputs = self._cache[operand.key] = operand.indicator.live(self.columns, operand.params)
        return outputs[operand.output]


def _evaluate(node: CompiledNode, values: _Values, explain: bool) -> tuple[bool, dict[str, Any]]:
    if isinstance(node, CompiledComparison):
        prev_a, a = values.get(node.left)
        if isinstance(node.right, CompiledOperand):
            prev_b, b = values.get(node.right)
        else:
            prev_b = b = node.right
        result = compare(node.op, prev_a, prev_b, a, b)
        if not explain:
            return result, {}
        trace: dict[str, Any] = {"rule": node.text, "result": result, node.left.label: _plain(a)}
        if isinstance(node.right, CompiledOperand):
            trace[node.right.label] = _plain(b)
        if node.op in CROSSES:
            trace["previous"] = {node.left.label: _plain(prev_a)}
            if isinstance(node.right, CompiledOperand):
                trace["previous"][node.right.label] = _plain(prev_b)
        return result, trace
    results: list[bool] = []
    traces: list[dict[str, Any]] = []
    for child in node.children:
        r, t = _evaluate(child, values, explain)
        results.append(r)
        traces.append(t)
    if node.kind == "all":
        result = all(results)
    elif node.kind == "any":
        result = any(results)
    else:
        result = not results[0]
    if not explain:
        return result, {}
    return result, {"rule": node.text, "result": result, node.kind: traces}


def decide(compiled: CompiledSpec, columns: Columns, explain: bool = True) -> tuple[int, dict[str, Any]]:
    """(+1 buy / -1 sell / 0 hold, the reasons) on the last bar of `columns`."""
    values = _Values(columns)
    fired: dict[str, bool] = {}
    reasons: dict[str, Any] = {"side": compiled.side}
    for role, node in compiled.roles.items():
        fired[role], reasons[role] = _evaluate(node, values, explain)
    codes = {compiled.codes[role] for role, hit in fired.items() if hit}
    if len(codes) > 1:
        code, outcome = 0, "conflict: " + " and ".join(r for r, hit in fired.items() if hit) + " both true: hold"
    elif codes:
        code = codes.pop()
        outcome = next(r for r, hit in fired.items() if hit)
    else:
        code, outcome = 0, "no condition true"
    if explain:
        reasons["signal"] = outcome
        reasons["close"] = _plain(columns["close"][-1])
    return code, reasons
