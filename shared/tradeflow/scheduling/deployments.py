"""Deploying, pausing, resuming and stopping strategies: the deployment record plus its schedules."""

from __future__ import annotations

from datetime import datetime

from tradeflow.domain import Deployment, DeploymentStatus
from tradeflow.scheduling.schedules import delete_schedules, put_schedules
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import model_item


class DeploymentService:
    def __init__(self) -> None:
        self.repository = DeploymentRepository()
        self.audit = AuditRepository()

    def deploy(
        self, deployment: Deployment, actor: str = "system", details: dict[str, object] | None = None
    ) -> list[str]:
        """Store the deployment and create its schedules; `details` are added to the audit event."""
        self.repository.put(deployment)
        names = put_schedules(deployment, enabled=deployment.status is DeploymentStatus.ACTIVE)
        self._audit(
            deployment, deployment.updated_at, actor, "deployment.created", {**(details or {}), "schedules": names}
        )
        return names

    def set_status(
        self,
        deployment: Deployment,
        status: DeploymentStatus,
        at: datetime,
        actor: str = "system",
        expected: DeploymentStatus | None = None,
    ) -> None:
        """Move the deployment to `status` and its schedules with it. With `expected`, only if the stored
        deployment is still in that status (else `ConditionFailed`): concurrent changes cannot interleave."""
        updated = deployment.model_copy(update={"status": status, "updated_at": at})
        if expected is None:
            self.repository.put(updated)
        else:
            self.repository.table.put(
                model_item(updated, pk=updated.tenant_id, sk=updated.deployment_id),
                condition="#status = :expected",
                names={"#status": "status"},
                values={":expected": expected.value},
            )
        if status is DeploymentStatus.STOPPED:
            delete_schedules(updated)
        else:
            put_schedules(updated, enabled=status is DeploymentStatus.ACTIVE)
        self._audit(updated, at, actor, f"deployment.{status.value}", {})

    def _audit(self, deployment: Deployment, at: datetime, actor: str, action: str, details: dict[str, object]) -> None:
        self.audit.record(self.audit.event(deployment.tenant_id, at, actor, action, deployment.deployment_id, details))
