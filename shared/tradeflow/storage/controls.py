"""Trading controls. Read with strongly consistent reads: a halt applies to the very next decision."""

from __future__ import annotations

from tradeflow.domain import ControlScope, TradingControl
from tradeflow.domain.controls import GLOBAL_TENANT
from tradeflow.storage.dynamo import DynamoTable, model_item


class ControlRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("controls")

    def put(self, control: TradingControl) -> None:
        self.table.put(model_item(control, pk=control.tenant_id, sk=control.key))

    def active_for(
        self, tenant_id: str, deployment_id: str | None, account_id: str | None = None
    ) -> list[TradingControl]:
        """Active controls that stop a decision for this tenant, deployment and account."""
        found: list[TradingControl] = []
        for item in self.table.query(GLOBAL_TENANT) + self.table.query(tenant_id):
            control = TradingControl.model_validate(item)
            if not control.active:
                continue
            if control.scope is ControlScope.DEPLOYMENT_PAUSED and control.target != deployment_id:
                continue
            if control.scope is ControlScope.ACCOUNT_HALTED and control.target != account_id:
                continue
            if control.scope is ControlScope.GLOBAL_HALT and control.tenant_id != GLOBAL_TENANT:
                continue
            found.append(control)
        return found
