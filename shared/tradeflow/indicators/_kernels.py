"""Shared helpers for the indicator modules: conversion of vectorised inputs and warm-up handling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

NAN = math.nan


def check_period(period: int, minimum: int = 1, name: str = "period") -> None:
    if period < minimum:
        raise ValueError(f"{name} must be at least {minimum}")


def last_or_none(values: Sequence[float]) -> float | None:
    """The last value of a kernel's output, None when it is still in warm-up (NaN) or empty."""
    if not values or math.isnan(values[-1]):
        return None
    return values[-1]


def as_list(values: npt.ArrayLike) -> list[float]:
    """A numpy-compatible input as a list of Python floats (what the pure-Python kernels take)."""
    import numpy as np

    result: list[float] = np.asarray(values, dtype=float).tolist()
    return result


def as_array(values: Sequence[float]) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=float)
