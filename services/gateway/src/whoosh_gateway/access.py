"""Authentication and roles: who is calling, and may they do this.

Every route declares the least role it needs with `require(Role.X)`; the dependency
verifies the key, checks the role, and counts the request against the key's rate
limit, in that order (a refused key costs no one's budget).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.callers import UNAUTHENTICATED_ADMIN, Caller
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import state_of

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer whk_...` (or the header `X-API-Key`)",
)


def presented_key(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.headers.get("x-api-key") or None


async def authenticate(conn: HTTPConnection, token: str | None = None) -> Caller:
    """The caller behind a request or WebSocket; 401 without a valid key."""
    state = state_of(conn)
    if state.settings.insecure_no_auth:
        return UNAUTHENTICATED_ADMIN
    token = token or presented_key(conn)
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "no API key: send 'Authorization: Bearer whk_...'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await state.verifier.verify(token, conn.client.host if conn.client else "unknown")


def check_role(caller: Caller, needed: Role) -> None:
    if not caller.role.allows(needed):
        raise ApiError(
            403,
            "forbidden",
            f"this needs the {needed.value} role; the caller is {caller.role.value}",
        )


def require(role: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the authenticated caller, if it has at least `role`."""

    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],  # for the docs
    ) -> Caller:
        caller = await authenticate(request)
        check_role(caller, role)
        await state_of(request).limiter.check(caller)
        return caller

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


Viewer = Depends(require(Role.VIEWER))
Operator = Depends(require(Role.OPERATOR))
Admin = Depends(require(Role.ADMIN))
