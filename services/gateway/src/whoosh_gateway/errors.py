"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Programs branch on `code` (stable, machine-readable); people read `message`. Every way a
request can fail -- validation, an unknown route, a rejected command, an unreachable
coordinator -- ends in this shape with a 4xx (or 503), never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# The coordinator's rejection codes and query error codes, as HTTP statuses.
STATUS_OF_CODE = {
    "invalid": 422,
    "not_found": 404,
    "duplicate": 409,
    "bad_state": 409,
    "conflict": 409,
    "no_capable_agent": 422,
    "limited": 429,
    "too_large": 413,
    "forbidden": 403,
    "idempotency_key_reused": 422,
    "unauthorized": 401,
    "unavailable": 503,
    "internal": 500,
}
LIMITED_RETRY_AFTER_S = 5  # a task limit frees up when a task ends: a guess, not a promise
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, invalid, rate_limited")
    message: str = Field(description="what went wrong, for people")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="per-field problems of a request that did not validate"
    )


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised anywhere in a request; rendered as the shared error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def from_code(cls, code: str | None, message: str | None) -> ApiError:
        """A coordinator rejection (`code`, `reason`) as an API error."""
        code = code or "rejected"
        headers = {"Retry-After": str(LIMITED_RETRY_AFTER_S)} if code == "limited" else None
        return cls(STATUS_OF_CODE.get(code, 400), code, message or code, headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code.replace("_", " ")}
    for status, code in HTTP_CODES.items()
    if status in (401, 403, 404, 409, 413, 422, 429, 503)
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, details=None
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def describe_validation(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """'body.priority: Input should be less than or equal to 10; ...' and the details."""
    details, parts = [], []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ())) or "request"
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            msg = f"malformed JSON ({error.get('ctx', {}).get('error', 'cannot parse')})"
        parts.append(f"{loc}: {msg}")
        details.append({"loc": loc, "msg": msg, "type": str(error.get("type", ""))})
    return "; ".join(parts) or "invalid request", details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = describe_validation(list(exc.errors()))
        return error_response(422, "invalid", message, details=details)

    @app.exception_handler(ValidationError)
    async def _invalid_command(request: Request, exc: ValidationError) -> JSONResponse:
        """A request that passed its own model but not the command built from it."""
        message, details = describe_validation(list(exc.errors()))
        return error_response(422, "invalid", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; the gateway logged it")
