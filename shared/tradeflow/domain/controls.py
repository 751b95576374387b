"""Trading controls: switches that stop trading at the very next risk decision."""

from __future__ import annotations

from enum import StrEnum

from tradeflow.domain.base import Model
from tradeflow.domain.types import UtcDatetime

GLOBAL_TENANT = "_global"


class ControlScope(StrEnum):
    GLOBAL_HALT = "global_halt"  # admins: every tenant stops
    TENANT_DISABLED = "tenant_disabled"  # admins: one tenant stops
    KILL_SWITCH = "kill_switch"  # the tenant stops itself
    DEPLOYMENT_PAUSED = "deployment_paused"  # one deployment stops
    ACCOUNT_HALTED = "account_halted"  # the system stops one broker account (refused credentials, books
    # that disagree with the broker); target = account id


class TradingControl(Model):
    tenant_id: str  # GLOBAL_TENANT for the global halt
    scope: ControlScope
    target: str = "*"  # deployment id for DEPLOYMENT_PAUSED, account id for ACCOUNT_HALTED
    active: bool
    reason: str = ""
    set_by: str = "system"
    updated_at: UtcDatetime

    @property
    def key(self) -> str:
        return f"{self.scope.value}#{self.target}"
