"""The REST API function: API Gateway HTTP API (payload v2) -> Mangum -> the FastAPI app.

The app is built once per execution environment (at import), so warm invocations only route.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from tradeflow.api.app import create_app
from tradeflow.api.context import logger, tracer

app = create_app()
# Error bodies are application/problem+json: text, not base64 (Mangum only knows the common text types).
TEXT_TYPES = ["application/json", "application/problem+json", "application/vnd.oai.openapi", "text/html", "text/plain"]
_asgi = Mangum(app, lifespan="off", api_gateway_base_path="/", text_mime_types=TEXT_TYPES)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _asgi(event, context)
    return response
