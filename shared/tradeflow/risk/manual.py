"""The risk decision for a manual order: a pure function of the order, the active controls and the
account's books, like `engine.decide` for signals — but the caller chose the quantity, so nothing is
sized; the order is approved as asked or rejected with the reason.

- Any active trading control that applies to the tenant (global halt, tenant disabled, kill switch)
  rejects it. A deployment's pause does not apply: a manual order belongs to no deployment.
- Short selling is not allowed for manual orders: a sell beyond the account's long position (held plus
  in flight) is rejected.
- The part of an order that opens or adds to a position must fit the buying power: cash minus cash
  already reserved for pending buys, priced at the limit price (limit, stop-limit), the stop price
  (stop) or the reference price (market). The part that reduces a position reserves nothing.
"""

from __future__ import annotations

from decimal import Decimal

from tradeflow.domain import ControlScope, OrderSide, OrderType, TradingControl
from tradeflow.manual.model import ManualOrder
from tradeflow.risk.engine import ZERO, Approved, Book, Rejected


def order_price(order: ManualOrder) -> Decimal:
    """The price buying power is checked at: the worst the order can pay per unit as far as known."""
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and order.limit_price is not None:
        return order.limit_price
    if order.order_type is OrderType.STOP and order.stop_price is not None:
        return max(order.stop_price, order.reference_price) if order.side is OrderSide.BUY else order.stop_price
    return order.reference_price


def decide_manual(order: ManualOrder, controls: list[TradingControl], book: Book) -> Approved | Rejected:
    for control in controls:
        if not control.active or control.scope is ControlScope.DEPLOYMENT_PAUSED:
            continue  # a deployment's pause, or a switched-off control
        if control.scope is ControlScope.ACCOUNT_HALTED and control.target != order.account_id:
            continue
        detail = f": {control.reason}" if control.reason else ""
        return Rejected(f"trading control {control.scope.value} is active{detail}")

    held = book.effective_quantity(order.symbol)
    signed = order.quantity * order.side.sign
    after = held + signed
    if after < 0 and order.side is OrderSide.SELL:
        return Rejected(
            f"short selling is not allowed for manual orders: sell {order.quantity} {order.symbol} "
            f"but the account holds {max(held, ZERO)} (including orders in flight)"
        )
    # the part that reduces an existing position, and the part that opens or adds
    reducing = min(order.quantity, abs(held)) if held * signed < 0 else ZERO
    opening = order.quantity - reducing
    notes = [f"manual {order.order_type.value} {order.side.value} {order.quantity} {order.symbol}"]
    if reducing:
        notes.append(f"reduces position by {reducing}")
    price = order_price(order)
    notional = opening * price
    if opening > 0 and order.side is OrderSide.BUY:
        available = book.account.cash - book.reserved_cash()
        if notional > available:
            return Rejected(
                f"insufficient buying power: {opening} {order.symbol} at {price} needs {notional}, "
                f"{max(available, ZERO)} available"
            )
    return Approved(order.side, order.quantity, notional, opens=opening > 0 and held == 0, notes=notes)
