"""A short-lived HTTP session with the gateway for one CLI command, errors in words.

Refused connections become exit 3 with a hint (like an unreachable NATS); the gateway's
error shape (`{"error": {"code", "message"}}`) becomes one line and exit 1, or exit 2 for
a request the gateway found invalid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from whoosh_cli.errors import NOT_RUNNING_HINT, CliError, UnreachableError, UsageError

ModelT = TypeVar("ModelT", bound=BaseModel)
TIMEOUT_S = 30.0
API = "/api/v1"


class GatewayRejected(CliError):
    """The gateway answered with an error: its code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.reason = message


class NoAnswerError(UnreachableError):
    """The gateway was reached but the exchange broke off (timeout, dropped connection):
    the request may or may not have been done."""


class GatewaySession:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a successful call; GatewayRejected otherwise."""
        try:
            response = await self.client.request(method, f"{API}{path}", **kwargs)
        except httpx.ConnectError:
            raise UnreachableError(
                f"cannot reach the gateway at {self.url}: {NOT_RUNNING_HINT}"
            ) from None
        except httpx.HTTPError as exc:
            raise NoAnswerError(f"the gateway at {self.url} did not answer: {exc}") from None
        if response.is_success:
            return response.json()
        code, message = _error_of(response)
        raise GatewayRejected(response.status_code, code, message)

    async def delete(self, path: str, model: type[ModelT]) -> ModelT:
        """DELETE, and the answer as `model`."""
        return _as(model, await self.call("DELETE", path), path)

    async def get(self, path: str, model: type[ModelT], **params: Any) -> ModelT:
        given = {key: value for key, value in params.items() if value is not None}
        return _as(model, await self.call("GET", path, params=given), path)


def _as(model: type[ModelT], data: Any, path: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"unexpected answer from the gateway to {path}: {exc}") from None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200] or response.reason_phrase


def raise_for_usage(exc: GatewayRejected) -> None:
    """A request the gateway found invalid is the user's to fix: exit 2."""
    if exc.status == 422 and exc.code == "invalid":
        raise UsageError(exc.message) from None


@asynccontextmanager
async def gateway_session(url: str, api_key: str | None) -> AsyncIterator[GatewaySession]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_S) as client:
        yield GatewaySession(client, url)
