"""Crossovers between two series."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Cross(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    NONE = "none"


def cross(prev_a: float, prev_b: float, a: float, b: float) -> Cross:
    """`a` crosses above `b` when it was at or below it and is now strictly above (and vice versa)."""
    if prev_a <= prev_b and a > b:
        return Cross.ABOVE
    if prev_a >= prev_b and a < b:
        return Cross.BELOW
    return Cross.NONE


def cross_series(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Per bar: +1 where `a` crosses above `b`, -1 where it crosses below, else 0 (as `cross` on the
    previous and current bar; 0 at the first bar and wherever a NaN is involved). dtype int8."""
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("a and b must have the same shape")
    out = np.zeros(x.shape, dtype=np.int8)
    prev_x, prev_y, cur_x, cur_y = x[:-1], y[:-1], x[1:], y[1:]
    out[1:][(prev_x <= prev_y) & (cur_x > cur_y)] = 1
    out[1:][(prev_x >= prev_y) & (cur_x < cur_y)] = -1
    return out
