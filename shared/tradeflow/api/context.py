"""Per-request context: the request id, the caller (`Principal`), their tenant, and the rate limit.

- Request ids: an `x-request-id` header (1-128 safe characters) is kept, otherwise one is generated; it
  is echoed in the response and attached to every log line written while the request runs (a logging
  filter reads it from a context variable, so concurrent requests under uvicorn never mix ids).
- `Caller` (a FastAPI dependency) verifies the bearer token with the app's `TokenVerifier` and applies
  the tenant's request rate limit; `AdminCaller` also requires the `admin` role. Every resource route
  takes one of them and uses `caller.tenant_id` for every storage call: no route reads another tenant.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tradeflow.api.auth import AuthError, Principal, TokenVerifier
from tradeflow.api.errors import ApiError
from tradeflow.runtime.observability import observability

logger, tracer, metrics = observability("api")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current_request_id.get()
        return True


logger.addFilter(_RequestIdFilter())


def current_request_id() -> str | None:
    return _current_request_id.get()


def install(app: FastAPI) -> None:
    """The request-id middleware (outermost, so error responses carry the id too)."""

    @app.middleware("http")
    async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = request_id
        token = _current_request_id.set(request_id)
        try:
            response = await call_next(request)
        finally:
            _current_request_id.reset(token)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response


_bearer = HTTPBearer(auto_error=False, description="a JWT: Cognito in AWS, `tradeflow local token` locally")


def _principal(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("missing_token", "an Authorization: Bearer <token> header is required")
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The authenticated caller, after the tenant's rate limit."""
    principal = _principal(request, credentials)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(principal.tenant_id)
    return principal


def admin_caller(principal: Annotated[Principal, Depends(caller)]) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "this operation needs the admin role")
    return principal


Caller = Annotated[Principal, Depends(caller)]
AdminCaller = Annotated[Principal, Depends(admin_caller)]
