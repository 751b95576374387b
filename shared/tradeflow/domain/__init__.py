"""Domain models: pure pydantic v2 types with no knowledge of AWS, HTTP or brokers.

Money, prices and quantities are `Decimal` (design rule 7); timestamps are UTC-aware datetimes.
"""

from tradeflow.domain.accounts import Account, LedgerEntry, LedgerEntryKind
from tradeflow.domain.audit import AuditEvent
from tradeflow.domain.bars import Bar
from tradeflow.domain.controls import ControlScope, TradingControl
from tradeflow.domain.deployments import (
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    RiskProfile,
    SizingMethod,
    SizingRule,
)
from tradeflow.domain.fills import Fill
from tradeflow.domain.orders import (
    InvalidOrderTransition,
    Order,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradeflow.domain.positions import Position
from tradeflow.domain.signals import Evaluation, Signal, SignalAction, SignalOutcome, SignalRecord

__all__ = [
    "Account",
    "AuditEvent",
    "Bar",
    "ControlScope",
    "Deployment",
    "DeploymentMode",
    "DeploymentStatus",
    "Evaluation",
    "Fill",
    "InvalidOrderTransition",
    "LedgerEntry",
    "LedgerEntryKind",
    "Order",
    "OrderIntent",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "RiskProfile",
    "Signal",
    "SignalAction",
    "SignalOutcome",
    "SignalRecord",
    "SizingMethod",
    "SizingRule",
    "TimeInForce",
    "TradingControl",
]
