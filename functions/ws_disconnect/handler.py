"""WebSocket $disconnect: forget the connection (API Gateway ignores the answer; it is always 200)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.realtime.service import RealtimeService
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("ws_disconnect")
service = RealtimeService()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service.disconnect(event)
    metrics.add_metric(name="WsDisconnected", unit=MetricUnit.Count, value=1)
    logger.info(
        "websocket disconnect",
        extra={
            "event": "ws_disconnect",
            "code": outcome.code,
            "tenant_id": outcome.tenant_id,
            "connection_id": outcome.connection_id,
            "disconnect_reason": (event.get("requestContext") or {}).get("disconnectReason"),
        },
    )
    return outcome.response()
