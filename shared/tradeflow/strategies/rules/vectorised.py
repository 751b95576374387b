"""The vectorised signals of a rule spec, exactly equal to the live bar-by-bar walk.

Every operand is computed once over the whole history with its series form. For the non-recursive
indicators (prices, SMA, WMA, ATR, Bollinger, Stochastic, VWAP, OBV change, Donchian) that is bit for
bit the value `evaluate` computes from its window, so their comparisons are exact. The recursive ones
(EMA, RSI, MACD, ADX) are computed in a window of `warmup` bars live, which agrees with the full
history only to ~1e-9 relative; a comparison involving one is "unsure" on a bar where its two sides are
within `_SLACK` (relative to their size plus the operand's scale: the source price for EMA and MACD, 100
for RSI and ADX) — on the previous bar too for a crossing. Every unsure bar is decided by the live rule
itself on the same window the walk uses; all other bars cannot differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeflow.strategies.rules.evaluate import (
    CompiledComparison,
    CompiledNode,
    CompiledOperand,
    CompiledSpec,
    decide,
)

if TYPE_CHECKING:
    import numpy as np

_SLACK = 1e-6


class _Series:
    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns
        self._cache: dict[object, dict[str, np.ndarray]] = {}

    def get(self, operand: CompiledOperand) -> np.ndarray:
        outputs = self._cache.get(operand.key)
        if outputs is None:
            outputs = self._cache[operand.key] = operand.indicator.series(self.columns, operand.params)
        return outputs[operand.output]

    def scale(self, operand: CompiledOperand) -> np.ndarray | float | None:
        """The size of a window-vs-history difference of this operand; None when there is none."""
        import numpy as np

        precision = operand.indicator.precision
        if precision == "exact":
            return None
        if precision == "oscillator":
            return 100.0
        scale: np.ndarray = np.abs(self.columns[getattr(operand.params, "source", "close")])
        return scale


def _comparison(node: CompiledComparison, series: _Series) -> tuple[np.ndarray, np.ndarray]:
    """(result, unsure) per bar."""
    import numpy as np

    a = series.get(node.left)
    b = series.get(node.right) if isinstance(node.right, CompiledOperand) else np.full(a.shape, node.right)
    n = a.size
    if node.op == "<":
        result = a < b
    elif node.op == "<=":
        result = a <= b
    elif node.op == ">":
        result = a > b
    elif node.op == ">=":
        result = a >= b
    else:
        result = np.zeros(n, dtype=bool)
        if node.op == "crosses_above":
            result[1:] = (a[:-1] <= b[:-1]) & (a[1:] > b[1:])
        else:
            result[1:] = (a[:-1] >= b[:-1]) & (a[1:] < b[1:])
    scales = [series.scale(node.left)]
    if isinstance(node.right, CompiledOperand):
        scales.append(series.scale(node.right))
    unsure = np.zeros(n, dtype=bool)
    if any(s is not None for s in scales):
        total = np.abs(a) + np.abs(b)
        for s in scales:
            if s is not None:
                total = total + s
        near = np.abs(a - b) <= _SLACK * total
        unsure |= near
        if node.op in ("crosses_above", "crosses_below"):
            unsure[1:] |= near[:-1]
    return result, unsure


def _node(node: CompiledNode, series: _Series) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(node, CompiledComparison):
        return _comparison(node, series)
    parts = [_node(child, series) for child in node.children]
    unsure = parts[0][1].copy()
    result = parts[0][0].copy()
    for r, u in parts[1:]:
        unsure |= u
        if node.kind == "all":
            result &= r
        else:
            result |= r
    if node.kind == "not":
        result = ~result
    return result, unsure


def signals(
    compiled: CompiledSpec,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> np.ndarray:
    import numpy as np

    columns = {"open": open, "high": high, "low": low, "close": close, "volume": volume}
    n, w = close.size, compiled.warmup
    out = np.zeros(n, dtype=np.int8)
    if n < w:
        return out
    series = _Series(columns)
    buy = np.zeros(n, dtype=bool)
    sell = np.zeros(n, dtype=bool)
    unsure = np.zeros(n, dtype=bool)
    for role, node in compiled.roles.items():
        result, role_unsure = _node(node, series)
        unsure |= role_unsure
        if compiled.codes[role] == 1:
            buy |= result
        else:
            sell |= result
    out[buy & ~sell] = 1
    out[sell & ~buy] = -1
    out[: w - 1] = 0
    candidates = np.flatnonzero(unsure[w - 1 :]) + (w - 1)
    if candidates.size:
        lists = {k: v.tolist() for k, v in columns.items()}
        for t in candidates.tolist():
            window = {k: v[t + 1 - w : t + 1] for k, v in lists.items()}
            out[t] = decide(compiled, window, explain=False)[0]
    return out
