"""Deployments of a strategy to an account, and the risk profile that bounds them."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from tradeflow.domain.base import Model
from tradeflow.domain.schedule_expressions import validate_schedule
from tradeflow.domain.timeframes import duration
from tradeflow.domain.types import Money, Quantity, ResourceId, Symbol, TenantId, UtcDatetime


def _unique(symbols: list[str]) -> list[str]:
    if len(set(symbols)) != len(symbols):
        raise ValueError("symbols must be unique")
    return symbols


def _known_timeframe(value: str) -> str:
    duration(value)  # raises, naming the known ones
    return value


# The deployment fields' rules, shared by the model and the API's request body.
Symbols = Annotated[list[Symbol], Field(min_length=1), AfterValidator(_unique)]
Timeframe = Annotated[str, AfterValidator(_known_timeframe)]
ScheduleExpression = Annotated[str, AfterValidator(validate_schedule)]


class DeploymentMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class DeploymentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


class SizingMethod(StrEnum):
    FIXED_QUANTITY = "fixed_quantity"
    PERCENT_OF_EQUITY = "percent_of_equity"
    ATR_RISK = "atr_risk"  # risk a fraction of equity over a stop placed atr_multiple x ATR away


class SizingRule(Model):
    method: SizingMethod = SizingMethod.PERCENT_OF_EQUITY
    quantity: Quantity | None = Field(default=None, gt=0)
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    risk_fraction: Decimal | None = Field(default=None, gt=0, le=1)
    atr_multiple: Decimal = Field(default=Decimal(2), gt=0)
    fractional: bool = False  # whole units (equities) unless the asset trades in fractions
    quantity_step: Decimal = Field(default=Decimal("0.0001"), gt=0)  # rounding step when fractional

    @model_validator(mode="after")
    def _parameters_present(self) -> SizingRule:
        required = {
            SizingMethod.FIXED_QUANTITY: "quantity",
            SizingMethod.PERCENT_OF_EQUITY: "percent",
            SizingMethod.ATR_RISK: "risk_fraction",
        }[self.method]
        if getattr(self, required) is None:
            raise ValueError(f"sizing method {self.method.value} requires '{required}'")
        return self


class RiskProfile(Model):
    """Limits applied by the risk function before any order reaches a broker. None = no limit."""

    sizing: SizingRule = Field(default_factory=lambda: SizingRule(percent=Decimal(10)))
    max_position_quantity: Quantity | None = Field(default=None, gt=0)
    max_position_notional: Money | None = Field(default=None, gt=0)
    max_open_positions: int | None = Field(default=None, gt=0)
    max_gross_exposure: Money | None = Field(default=None, gt=0)
    daily_loss_limit: Money | None = Field(default=None, gt=0)  # realized loss per UTC day
    cooldown_after_loss_seconds: int = Field(default=0, ge=0)
    # A signal that waited longer than this in the queue (an outage, a backlog) is rejected as stale.
    max_signal_age_seconds: int | None = Field(default=300, gt=0)
    allow_short: bool = False


class Deployment(Model):
    tenant_id: TenantId
    deployment_id: ResourceId
    name: str = ""
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    symbols: Symbols
    account_id: ResourceId
    mode: DeploymentMode = DeploymentMode.PAPER
    schedule: ScheduleExpression = "rate(1 minute)"
    timeframe: Timeframe = "1m"  # which bars the strategy reads
    risk: RiskProfile = Field(default_factory=RiskProfile)
    status: DeploymentStatus = DeploymentStatus.ACTIVE
    max_bar_age_seconds: int | None = Field(default=None, gt=0)  # stale-data guard; None = 3 bars
    created_at: UtcDatetime
    updated_at: UtcDatetime
