"""WebSocket $connect: authenticate the `token` query parameter and store the connection.
A non-2xx answer makes API Gateway refuse the connection (401 bad/missing token, 503 keys unavailable)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tradeflow.realtime.service import RealtimeService
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("ws_connect")
service = RealtimeService()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service.connect(event)
    accepted = outcome.status == 200
    metrics.add_metric(name="WsConnected" if accepted else "WsRefused", unit=MetricUnit.Count, value=1)
    logger.info(
        "websocket connect" if accepted else "websocket connect refused",
        extra={
            "event": "ws_connect",
            "status": outcome.status,
            "code": outcome.code,
            "reason": outcome.reason,
            "tenant_id": outcome.tenant_id,
            "connection_id": outcome.connection_id,
            **outcome.extra,
        },
    )
    return outcome.response()
