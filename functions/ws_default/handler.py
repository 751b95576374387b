"""WebSocket $default: subscribe / unsubscribe / ping. The reply (or an error naming what is wrong) is posted
back to the client through the API Gateway Management API; a bad frame never closes the socket. The status
code (200, 400 bad frame, 410 client gone) is for logs only: no route response is configured."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.realtime.service import RealtimeService
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("ws_default")
service = RealtimeService()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service.default(event)
    metrics.add_metric(name="WsFrames", unit=MetricUnit.Count, value=1)
    if outcome.status == 400:
        metrics.add_metric(name="WsBadFrames", unit=MetricUnit.Count, value=1)
    log = logger.info if outcome.status == 200 else logger.warning
    log(
        "websocket frame",
        extra={
            "event": "ws_default",
            "status": outcome.status,
            "code": outcome.code,
            "reason": outcome.reason,
            "tenant_id": outcome.tenant_id,
            "connection_id": outcome.connection_id,
            "delivered": outcome.delivered,
            **outcome.extra,
        },
    )
    return outcome.response()
