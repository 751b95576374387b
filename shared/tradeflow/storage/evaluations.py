"""Strategy evaluations: one record per (deployment, symbol, scheduled time)."""

from __future__ import annotations

from datetime import timedelta

from tradeflow.domain import Evaluation
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import DynamoTable, model_item
from tradeflow.storage.keys import evaluations_pk

RETENTION = timedelta(days=90)


class EvaluationRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("evaluations")

    def put(self, evaluation: Evaluation) -> None:
        self.table.put(
            model_item(
                evaluation,
                pk=evaluations_pk(evaluation.tenant_id, evaluation.deployment_id, evaluation.symbol),
                sk=iso(evaluation.evaluated_at),
                expires_at=int((evaluation.evaluated_at + RETENTION).timestamp()),
            )
        )

    def latest(self, tenant_id: str, deployment_id: str, symbol: str, count: int = 1) -> list[Evaluation]:
        items = self.table.query(evaluations_pk(tenant_id, deployment_id, symbol), forward=False, limit=count)
        return [Evaluation.model_validate(i) for i in items]
