"""Strategy function: EventBridge Scheduler event -> evaluation (and maybe a signal on the queue)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tradeflow.domain.validation import describe
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.observability import observability
from tradeflow.strategies.service import ScheduledInvocation, StrategyService

logger, tracer, metrics = observability("strategy")
queues = SqsQueues()
service = StrategyService(queues)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        invocation = ScheduledInvocation.model_validate(event)
    except ValidationError as exc:
        # A malformed schedule input never gets better: dead-letter it with the reason, don't retry.
        reason = f"invalid scheduler event: {describe(exc)}"
        queues.dead_letter("dead_events", _dump(event), "strategy", context.aws_request_id, reason)
        logger.error("dead-lettered", extra={"event": "dead_letter", "reason": reason})
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        return {"status": "dead_lettered", "reason": reason}
    result = service.run(invocation)
    evaluation = result.evaluation
    if result.signal is not None:
        logger.thread_safe_append_keys(correlation_id=result.signal.signal_id)
        metrics.add_metric(name="Signals", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Evaluations", unit=MetricUnit.Count, value=1)
    logger.info(
        "evaluated",
        extra={
            "event": "signal" if result.signal else "evaluation",
            "tenant_id": evaluation.tenant_id,
            "deployment_id": evaluation.deployment_id,
            "symbol": evaluation.symbol,
            "status": evaluation.status,
            "action": evaluation.action.value,
            "signal_id": evaluation.signal_id,
            "price": str(result.signal.price) if result.signal else None,
            "reasons": evaluation.reasons,
        },
    )
    logger.thread_safe_clear_keys()
    return {"status": evaluation.status, "action": evaluation.action.value, "signal_id": evaluation.signal_id}


def _dump(event: Any) -> str:
    import json

    return json.dumps(event, default=str)
