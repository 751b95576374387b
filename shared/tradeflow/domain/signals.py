"""Signals: what a strategy decided for one (deployment, symbol, bar), and what became of it."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from tradeflow.domain.base import Model
from tradeflow.domain.types import Price, ResourceId, Symbol, TenantId, UtcDatetime


class SignalAction(StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class SignalOutcome(StrEnum):
    """Lifecycle of a signal in the journal. The last four are final (design rule 4)."""

    PENDING = "pending"  # emitted by the strategy, not yet decided by risk
    APPROVED = "approved"  # risk reserved exposure and queued an order intent
    ORDERED = "ordered"  # the order is with the broker, not yet final
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    DEAD_LETTERED = "dead_lettered"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({SignalOutcome.FILLED, SignalOutcome.REJECTED, SignalOutcome.CANCELLED, SignalOutcome.DEAD_LETTERED})
FINAL_OUTCOMES = _FINAL


class Signal(Model):
    """The message on the `signals` queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal_id: str = Field(min_length=5, max_length=64)
    tenant_id: TenantId
    deployment_id: ResourceId
    account_id: ResourceId
    symbol: Symbol
    action: SignalAction
    bar_time: UtcDatetime
    generated_at: UtcDatetime
    price: Price  # the close of the bar the decision was taken on
    atr: Price | None = None  # volatility for risk-based sizing, when the strategy measured it
    strategy: str
    reasons: dict[str, Any] = Field(default_factory=dict)

    @property
    def group_id(self) -> str:
        """FIFO message group: one ordered lane per (tenant, account, symbol)."""
        return f"{self.tenant_id}#{self.account_id}#{self.symbol}"


class Evaluation(Model):
    """One strategy evaluation, recorded whether it produced a signal or not."""

    tenant_id: TenantId
    deployment_id: ResourceId
    symbol: Symbol
    evaluated_at: UtcDatetime  # the schedule's scheduled time: "now" for this evaluation
    bar_time: UtcDatetime | None = None  # None when no bar was read (unknown deployment, no data ...)
    action: SignalAction
    status: str = "ok"  # ok | insufficient_data | stale_data | inactive | unknown_symbol
    signal_id: str | None = None
    reasons: dict[str, Any] = Field(default_factory=dict)


class SignalRecord(Model):
    """The journal entry of a signal: exactly one final outcome per signal id."""

    tenant_id: TenantId
    signal_id: str
    deployment_id: ResourceId
    account_id: ResourceId
    symbol: Symbol
    action: SignalAction
    bar_time: UtcDatetime
    outcome: SignalOutcome
    reason: str | None = None
    client_order_id: str | None = None
    intent: dict[str, Any] | None = None  # the approved OrderIntent, kept to re-send it after a crash
    updated_at: UtcDatetime
    created_at: UtcDatetime
    quantity: Decimal | None = None
    last_error: str | None = None
