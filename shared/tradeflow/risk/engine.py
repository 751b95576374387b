"""The risk decision: a pure function of the signal, the deployment's risk profile, the active
controls and the account's books (positions plus exposure reserved by in-flight intents).

Signals are target-position instructions: BUY means "be long", SELL means "be flat" (or short when the
profile allows it). Orders that reduce exposure are never blocked by exposure limits; opening orders
are sized, then clamped to the position, gross-exposure and cash limits, and rejected by the
daily-loss limit, the loss cooldown and the open-positions limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradeflow.domain import (
    Account,
    ControlScope,
    Deployment,
    DeploymentStatus,
    OrderSide,
    Position,
    Signal,
    SignalAction,
    TradingControl,
)
from tradeflow.risk.sizing import SizingError, round_quantity, size

ZERO = Decimal(0)


@dataclass(frozen=True)
class Approved:
    side: OrderSide
    quantity: Decimal
    notional: Decimal  # reserved against gross exposure and cash (0 for reducing orders)
    opens: bool  # opens a position where there was none
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class Book:
    """What risk sees of an account: positions and reservations, marked at known prices."""

    account: Account
    positions: dict[str, Position]
    prices: dict[str, Decimal]  # mark per symbol (the signal's price overrides for its symbol)

    def effective_quantity(self, symbol: str) -> Decimal:
        held = self.positions[symbol].quantity if symbol in self.positions else ZERO
        pending = self.account.pending.get(symbol)
        return held + (pending.quantity if pending else ZERO)

    def mark(self, symbol: str) -> Decimal:
        if symbol in self.prices:
            return self.prices[symbol]
        position = self.positions.get(symbol)
        if position is not None:
            return position.last_price or position.average_price
        return ZERO

    def equity(self) -> Decimal:
        return self.account.cash + sum((p.quantity * self.mark(s) for s, p in self.positions.items()), ZERO)

    def gross_exposure(self) -> Decimal:
        held = sum((abs(p.quantity) * self.mark(s) for s, p in self.positions.items()), ZERO)
        reserved = sum((p.notional for p in self.account.pending.values()), ZERO)
        return held + reserved

    def open_symbols(self) -> set[str]:
        symbols = {s for s, p in self.positions.items() if p.quantity != 0}
        symbols |= {s for s, p in self.account.pending.items() if p.opens > 0 or p.quantity != 0}
        return symbols

    def reserved_cash(self) -> Decimal:
        """Cash promised to pending buys. A symbol's reserved notional is a short sale's (exposure, not
        cash) only when the symbol is heading short; a pending close in front of a buy does not free the
        buy's cash (its proceeds are not known yet, and are not counted as cash either)."""
        return sum((p.notional for s, p in self.account.pending.items() if self.effective_quantity(s) >= 0), ZERO)


def decide(
    signal: Signal,
    deployment: Deployment,
    controls: list[TradingControl],
    book: Book,
    now: datetime,
) -> Approved | Rejected:
    for control in controls:
        # Callers pass the controls that apply, but a switched-off control, or a pause of another
        # deployment, must never stop this one (nor be reported as "active").
        if (
            not control.active
            or (control.scope is ControlScope.DEPLOYMENT_PAUSED and control.target != deployment.deployment_id)
            or (control.scope is ControlScope.ACCOUNT_HALTED and control.target != deployment.account_id)
        ):
            continue
        detail = f": {control.reason}" if control.reason else ""
        return Rejected(f"trading control {control.scope.value} is active{detail}")
    if deployment.status is not DeploymentStatus.ACTIVE:
        return Rejected(f"deployment {deployment.deployment_id} is {deployment.status.value}")
    if signal.action is SignalAction.HOLD:
        return Rejected("hold signals carry no order")

    profile = deployment.risk
    held = book.effective_quantity(signal.symbol)
    if signal.action is SignalAction.BUY and held < 0:
        return Approved(OrderSide.BUY, -held, ZERO, opens=False, notes=["closes short position"])
    if signal.action is SignalAction.SELL and held > 0:
        return Approved(OrderSide.SELL, held, ZERO, opens=False, notes=["closes long position"])
    if signal.action is SignalAction.BUY and held > 0:
        return Rejected(f"already long {held} {signal.symbol}")
    if signal.action is SignalAction.SELL and held < 0:
        return Rejected(f"already short {-held} {signal.symbol}")
    if signal.action is SignalAction.SELL and not profile.allow_short:
        return Rejected(f"no long position in {signal.symbol} to close and short selling is not allowed")
    return _open(signal, deployment, book, now)


def _open(signal: Signal, deployment: Deployment, book: Book, now: datetime) -> Approved | Rejected:
    profile = deployment.risk
    side = OrderSide.BUY if signal.action is SignalAction.BUY else OrderSide.SELL
    day = now.date().isoformat()
    realized = book.account.realized_today(day)
    if profile.daily_loss_limit is not None and realized <= -profile.daily_loss_limit:
        return Rejected(f"daily loss limit {profile.daily_loss_limit} reached (realized today {realized})")
    position = book.positions.get(signal.symbol)
    if profile.cooldown_after_loss_seconds and position and position.last_loss_at:
        elapsed = (now - position.last_loss_at).total_seconds()
        if elapsed < profile.cooldown_after_loss_seconds:
            return Rejected(
                f"cooldown after a loss on {signal.symbol}: {int(elapsed)}s of "
                f"{profile.cooldown_after_loss_seconds}s elapsed"
            )
    if profile.max_open_positions is not None:
        others = book.open_symbols() - {signal.symbol}
        if len(others) + 1 > profile.max_open_positions:
            return Rejected(f"max open positions {profile.max_open_positions} reached ({len(others)} open)")

    price = signal.price
    equity = book.equity()
    try:
        wanted = size(profile.sizing, equity, price, signal.atr)
    except SizingError as exc:
        return Rejected(f"sizing failed: {exc}")
    notes = [f"sized {profile.sizing.method.value}: {round_quantity(wanted, profile.sizing)} at {price}"]

    caps: list[tuple[Decimal, str]] = []
    if profile.max_position_quantity is not None:
        caps.append((profile.max_position_quantity, "max_position_quantity"))
    if profile.max_position_notional is not None:
        caps.append((profile.max_position_notional / price, "max_position_notional"))
    if profile.max_gross_exposure is not None:
        room = profile.max_gross_exposure - book.gross_exposure()
        caps.append((room / price, "max_gross_exposure"))
    if side is OrderSide.BUY:
        cash_room = book.account.cash - book.reserved_cash()
        caps.append((cash_room / price, "available cash"))
    quantity = wanted
    for cap, name in caps:
        if cap < quantity:
            quantity = max(cap, ZERO)
            notes.append(f"clamped by {name}")
    quantity = round_quantity(quantity, profile.sizing)
    if quantity <= 0:
        limiting = notes[-1].removeprefix("clamped by ") if len(notes) > 1 else "sizing"
        return Rejected(f"no quantity left within {limiting} (equity {equity.quantize(Decimal('0.01'))})")
    return Approved(side, quantity, quantity * price, opens=True, notes=notes)
