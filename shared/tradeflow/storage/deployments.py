"""Deployments repository."""

from __future__ import annotations

from tradeflow.domain import Deployment
from tradeflow.storage.dynamo import DynamoTable, model_item


class DeploymentRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("deployments")

    def put(self, deployment: Deployment) -> None:
        self.table.put(model_item(deployment, pk=deployment.tenant_id, sk=deployment.deployment_id))

    def get(self, tenant_id: str, deployment_id: str) -> Deployment | None:
        item = self.table.get({"pk": tenant_id, "sk": deployment_id})
        return Deployment.model_validate(item) if item else None

    def list(self, tenant_id: str) -> list[Deployment]:
        return [Deployment.model_validate(i) for i in self.table.query(tenant_id)]
