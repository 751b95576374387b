"""Changing trading controls: the control and its audit event(s) written in one transaction, so no
change goes unaudited. Controls are read back with strongly consistent reads (the risk function's
`ControlRepository.active_for`), so a change applies to the very next risk decision."""

from __future__ import annotations

from collections.abc import Sequence

from tradeflow.domain import ControlScope, TradingControl
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import DynamoTable, Write, model_item, transact


def control_action(control: TradingControl) -> str:
    """The audit action of a change, e.g. `control.kill_switch.activated`."""
    return f"control.{control.scope.value}.{'activated' if control.active else 'released'}"


def control_subject(control: TradingControl) -> str:
    """What a change acts upon: the paused deployment, the disabled tenant, or the scope itself."""
    if control.scope in (ControlScope.DEPLOYMENT_PAUSED, ControlScope.ACCOUNT_HALTED):
        return control.target
    if control.scope is ControlScope.TENANT_DISABLED:
        return control.tenant_id
    return control.scope.value


class ControlChanges:
    def __init__(self) -> None:
        self.table = DynamoTable("controls")
        self.audit = AuditRepository()

    def get(self, tenant_id: str, scope: ControlScope, target: str = "*") -> TradingControl | None:
        item = self.table.get({"pk": tenant_id, "sk": f"{scope.value}#{target}"})
        return TradingControl.model_validate(item) if item else None

    def set(self, control: TradingControl, audit_tenants: Sequence[str] = ()) -> TradingControl:
        """Store `control` and audit it under its own tenant's trail (the platform's, `_global`, for the
        global halt) and under each of `audit_tenants`."""
        trails = dict.fromkeys([control.tenant_id, *audit_tenants])
        details = {"scope": control.scope.value, "target": control.target, "active": control.active}
        if control.reason:
            details["reason"] = control.reason
        writes = [Write("controls", "Put", item=model_item(control, pk=control.tenant_id, sk=control.key))]
        for tenant in trails:
            event = self.audit.event(
                tenant, control.updated_at, control.set_by, control_action(control), control_subject(control), details
            )
            writes.append(self.audit.new_write(event))
        transact(writes)
        return control

    def global_halt(self) -> TradingControl | None:
        return self.get(GLOBAL_TENANT, ControlScope.GLOBAL_HALT)
