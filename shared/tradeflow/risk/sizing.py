"""Position sizing: how many units an opening signal buys or sells."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tradeflow.domain import SizingMethod, SizingRule


class SizingError(ValueError):
    pass


def round_quantity(quantity: Decimal, rule: SizingRule) -> Decimal:
    """Round down to whole units, or to the rule's step for fractional assets: never size up."""
    step = rule.quantity_step if rule.fractional else Decimal(1)
    if quantity <= 0:
        return Decimal(0)
    units = (quantity / step).to_integral_value(rounding=ROUND_DOWN)
    # Plain notation: a bare normalize() turns 100 into 1E+2, which then reaches intents, audits and brokers.
    return Decimal(format((units * step).normalize(), "f")) if units else Decimal(0)


def size(rule: SizingRule, equity: Decimal, price: Decimal, atr: Decimal | None) -> Decimal:
    """Unrounded quantity for an opening order."""
    if price <= 0:
        raise SizingError(f"price {price} must be positive")
    if rule.method is SizingMethod.FIXED_QUANTITY:
        assert rule.quantity is not None
        return rule.quantity
    if rule.method is SizingMethod.PERCENT_OF_EQUITY:
        assert rule.percent is not None
        return equity * rule.percent / Decimal(100) / price
    assert rule.risk_fraction is not None
    if atr is None or atr <= 0:
        raise SizingError("atr_risk sizing needs the signal's ATR, and it has none")
    stop_distance = atr * rule.atr_multiple
    return equity * rule.risk_fraction / stop_distance
