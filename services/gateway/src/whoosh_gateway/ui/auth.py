"""Who is looking at the dashboard, and may they press this button.

Pages need a session cookie holding a key that still verifies (else: the login page).
State-changing forms also need the role, a CSRF token derived from the cookie, and a
request that did not come from another site (`Sec-Fetch-Site` / `Origin`): any one of the
three refuses a cross-site post, so a browser that lacks one protection still has two.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.callers import UNAUTHENTICATED_ADMIN, Caller
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.session import COOKIE, SessionSeal


class LoginRequired(Exception):
    """No valid session: the page answers with the login form (or a redirect to it)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


class UiRefused(Exception):
    """A dashboard action refused: shown on an error page with its status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their key's caller, and this session's CSRF token."""

    caller: Caller
    csrf: str

    @property
    def role(self) -> Role:
        return self.caller.role

    def can(self, role: str) -> bool:
        return self.caller.role.allows(Role(role))


def seal_of(request: Request) -> SessionSeal:
    seal: SessionSeal = request.app.state.ui_seal
    return seal


async def current_viewer(request: Request) -> Viewer:
    """The session's caller, verified now (so a revoked or expired key ends it)."""
    seal = seal_of(request)
    state = state_of(request)
    if state.settings.insecure_no_auth:  # local development: everyone is admin
        return Viewer(UNAUTHENTICATED_ADMIN, seal.csrf_token("anonymous"))
    cookie = request.cookies.get(COOKIE)
    key = seal.open(cookie)
    if key is None or cookie is None:
        raise LoginRequired("your session has ended; sign in again" if cookie else None)
    address = request.client.host if request.client else "unknown"
    try:
        caller = await state.verifier.verify(key, address)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise LoginRequired(f"your key no longer works: {exc.message}") from None
        raise
    return Viewer(caller, seal.csrf_token(cookie))


def check_same_site(request: Request) -> None:
    """Refuse a request a page of another site made the browser send."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise UiRefused(403, f"refused: a cross-site request ({fetch_site})")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise UiRefused(403, f"refused: the form came from {origin}, not this dashboard")
    elif origin == "null":
        raise UiRefused(403, "refused: a form from an opaque origin")


async def acting_viewer(request: Request, role: Role) -> Viewer:
    """For a state-changing form: same site, a valid CSRF token, and the role."""
    check_same_site(request)
    viewer = await current_viewer(request)
    form = await request.form()
    token = request.headers.get("x-csrf-token") or form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(viewer.csrf, token):
        raise UiRefused(403, "refused: the form's CSRF token is missing or stale; reload the page")
    if not viewer.caller.role.allows(role):
        raise UiRefused(
            403, f"refused: this needs the {role.value} role; your key is {viewer.role.value}"
        )
    await state_of(request).limiter.check(viewer.caller)
    return viewer
