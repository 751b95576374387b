"""Crossovers between two series."""

from __future__ import annotations

from enum import StrEnum


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
