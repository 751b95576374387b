"""Reconcile function: a scheduled event (every 5 minutes) -> every account compared with its broker.

"Now" is the event's `time` (design rule 6). The event may name one `tenant_id` / `account_id` (at its
top level or in `detail`) to reconcile only that. Returns a summary per account; differences, halts,
cash differences and skipped accounts are logged and counted as metrics for the alarms.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tradeflow.domain.types import iso
from tradeflow.domain.validation import describe
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.reconcile.models import AccountReport, ReconcileRequest, RunStatus
from tradeflow.reconcile.service import Reconciler
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("reconcile")
queues = SqsQueues()
reconciler = Reconciler()


def _observe(report: AccountReport) -> None:
    metrics.add_metric(name="AccountsReconciled", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ReconcileDifferences", unit=MetricUnit.Count, value=report.differences)
    metrics.add_metric(name="ReconcileRepairs", unit=MetricUnit.Count, value=report.repaired)
    metrics.add_metric(name="OrdersExpired", unit=MetricUnit.Count, value=report.cancelled)
    metrics.add_metric(name="UnexplainedDifferences", unit=MetricUnit.Count, value=report.unexplained)
    metrics.add_metric(name="AccountsHalted", unit=MetricUnit.Count, value=int(report.status is RunStatus.HALTED))
    metrics.add_metric(name="AccountsSkipped", unit=MetricUnit.Count, value=int(report.status is RunStatus.SKIPPED))
    metrics.add_metric(name="ReconcileErrors", unit=MetricUnit.Count, value=int(report.status is RunStatus.ERROR))
    metrics.add_metric(name="CashDifferences", unit=MetricUnit.Count, value=int(report.has_cash_difference))
    extra = {"event": "reconcile", **report.summary()}
    if report.status in (RunStatus.HALTED, RunStatus.ERROR):
        logger.error("account reconciled: %s", report.status.value, extra=extra)
    elif report.has_cash_difference:
        logger.error("account cash differs from the broker's", extra=extra)
    elif report.status is RunStatus.SKIPPED:
        logger.warning("account skipped", extra=extra)
    else:
        logger.info("account reconciled", extra=extra)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = ReconcileRequest.from_event(event)
    except ValidationError as exc:
        # A malformed event never gets better: dead-letter it with the reason, don't retry.
        reason = f"invalid reconcile event: {describe(exc)}"
        queues.dead_letter("dead_events", json.dumps(event, default=str), "reconcile", context.aws_request_id, reason)
        logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason})
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        return {"status": "dead_lettered", "reason": reason}
    reports = reconciler.run(request.time, request.tenant_id, request.account_id)
    for report in reports:
        _observe(report)
    return {"status": "ok", "time": iso(request.time), "accounts": [report.summary() for report in reports]}
