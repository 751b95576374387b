"""Errors as data: one body shape for every error the API returns.

Every non-2xx response is a `Problem` (RFC 9457 in spirit): `type` (a stable slug), `title` (its
human name), `status`, `detail` (what went wrong here) and, for 422, `errors`: one entry per invalid
field, named by its location (`body.symbols.0`, `query.limit`, `header.Idempotency-Key`).

Handlers translate everything the app can raise: request validation (422), `ApiError` raised by routes
(404 for another tenant's resource as for a missing one, 409, 429, ...), authentication (401, with
`WWW-Authenticate`), unknown routes and methods (404/405), and — as the last resort, logged with the
request id — anything else as a 500 that reveals nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradeflow.api.auth import AuthError, KeysUnavailableError
from tradeflow.storage.dynamo import InvalidStartKey

PROBLEM_MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("too_large", "Request too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid request"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="where: body.x.y, query.name, path.name or header.Name")
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="stable error slug, e.g. not_found, validation_error")
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class ApiError(Exception):
    """Raised by routes and services for an expected failure; becomes a `Problem` response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.type = type or _TITLES.get(status, ("error", "Error"))[0]
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for an error status: a `Problem`, served as application/problem+json."""
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# The error answers any authenticated route may give, documented on every router (app.py); routes add
# their own (403, 409, ...) with `problem_doc`.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_doc("a request body that cannot be parsed"),
    401: problem_doc("missing, malformed or expired bearer token (with a `WWW-Authenticate` challenge)"),
    404: problem_doc("not found: a missing resource and another tenant's get the same answer"),
    422: problem_doc("invalid request: `errors` names each invalid field"),
    429: problem_doc("the tenant's request rate limit (with `Retry-After`)"),
    500: problem_doc("an internal error; quote the request id when reporting it"),
    503: problem_doc("a dependency is unavailable (with `Retry-After`)"),
}


def not_found(kind: str, ident: str) -> ApiError:
    """The same answer for a missing resource and another tenant's (design rule 5: never reveal it)."""
    return ApiError(404, f"{kind} {ident!r} not found")


def field_error(location: str, message: str) -> ApiError:
    """A 422 naming one field, for checks that go beyond the request models."""
    return ApiError(422, f"{location}: {message}", errors=[FieldError(field=location, message=message)])


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    type: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    slug, title = _TITLES.get(status, ("error", "Error"))
    body = Problem(
        type=type or slug,
        title=title,
        status=status,
        detail=detail,
        errors=list(errors),
        request_id=getattr(request.state, "request_id", None),
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) if loc else "body"


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    # pydantic prefixes custom validator messages with "Value error, "; the field is named separately
    return message.removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a `Problem`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, type=exc.type, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_location(e.get("loc", ())), message=_message(e)) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or "invalid request"
        return problem_response(request, 422, detail, errors=errors)

    @app.exception_handler(KeysUnavailableError)
    async def _keys(request: Request, exc: KeysUnavailableError) -> JSONResponse:
        return problem_response(request, 503, exc.reason, headers={"Retry-After": "5"})

    @app.exception_handler(AuthError)
    async def _unauthenticated(request: Request, exc: AuthError) -> JSONResponse:
        challenge = f'Bearer error="invalid_token", error_description="{exc.code}"'
        return problem_response(request, 401, exc.reason, type=f"unauthenticated.{exc.code}", headers={
            "WWW-Authenticate": challenge
        })  # fmt: skip

    @app.exception_handler(InvalidStartKey)
    async def _forged_cursor(request: Request, exc: InvalidStartKey) -> JSONResponse:
        message = "not a cursor this API issued"
        return problem_response(
            request, 422, f"query.cursor: {message}", errors=[FieldError(field="query.cursor", message=message)]
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, ("", "Error"))[1]
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        return problem_response(request, exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        from tradeflow.api.context import logger

        logger.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "an internal error occurred; quote the request id when reporting it")
