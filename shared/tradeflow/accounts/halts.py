"""Halting a broker account: the system's own trading control on one account.

Set when the broker refuses the account's credentials, or when reconciliation finds books that differ
from the broker's in a way it cannot explain. The risk function then rejects every signal and manual
order of that account with the reason (so its deployments stop submitting, and say why), the control
change reaches the dashboard's alerts, and an audit event records it. The trader releases the halt
through the controls API once the cause is dealt with; rotating the credentials releases a
credentials halt.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tradeflow.domain import ControlScope, TradingControl
from tradeflow.storage.control_changes import ControlChanges

CREDENTIALS_PREFIX = "credentials refused"


def account_halt(tenant_id: str, account_id: str) -> TradingControl | None:
    control = ControlChanges().get(tenant_id, ControlScope.ACCOUNT_HALTED, account_id)
    return control if control is not None and control.active else None


def halt_account(
    tenant_id: str, account_id: str, reason: str, actor: str = "system", at: datetime | None = None
) -> TradingControl:
    """Halt the account (idempotent: an active halt with the same reason is left as it is)."""
    current = account_halt(tenant_id, account_id)
    if current is not None and current.reason == reason:
        return current
    control = TradingControl(
        tenant_id=tenant_id,
        scope=ControlScope.ACCOUNT_HALTED,
        target=account_id,
        active=True,
        reason=reason,
        set_by=actor,
        updated_at=at or datetime.now(UTC),
    )
    return ControlChanges().set(control)


def release_account(
    tenant_id: str, account_id: str, reason: str, actor: str, at: datetime | None = None, only_prefix: str = ""
) -> TradingControl | None:
    """Release an active halt (only one whose reason starts with `only_prefix`, when given)."""
    current = account_halt(tenant_id, account_id)
    if current is None or not current.reason.startswith(only_prefix):
        return None
    control = current.model_copy(update={"active": False, "reason": reason, "set_by": actor,
                                         "updated_at": at or datetime.now(UTC)})  # fmt: skip
    return ControlChanges().set(control)
