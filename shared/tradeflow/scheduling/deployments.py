"""Deploying, pausing, resuming and stopping strategies: the deployment record plus its schedules."""

from __future__ import annotations

from datetime import datetime

from tradeflow.domain import Deployment, DeploymentStatus
from tradeflow.scheduling.schedules import delete_schedules, put_schedules
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.deployments import DeploymentRepository


class DeploymentService:
    def __init__(self) -> None:
        self.repository = DeploymentRepository()
        self.audit = AuditRepository()

    def deploy(self, deployment: Deployment, actor: str = "system") -> list[str]:
        self.repository.put(deployment)
        names = put_schedules(deployment, enabled=deployment.status is DeploymentStatus.ACTIVE)
        self._audit(deployment, deployment.updated_at, actor, "deployment.created", {"schedules": names})
        return names

    def set_status(self, deployment: Deployment, status: DeploymentStatus, at: datetime, actor: str = "system") -> None:
        updated = deployment.model_copy(update={"status": status, "updated_at": at})
        self.repository.put(updated)
        if status is DeploymentStatus.STOPPED:
            delete_schedules(updated)
        else:
            put_schedules(updated, enabled=status is DeploymentStatus.ACTIVE)
        self._audit(updated, at, actor, f"deployment.{status.value}", {})

    def _audit(self, deployment: Deployment, at: datetime, actor: str, action: str, details: dict[str, object]) -> None:
        self.audit.record(self.audit.event(deployment.tenant_id, at, actor, action, deployment.deployment_id, details))
