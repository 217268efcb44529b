"""The dashboard under `/ui/`: server-rendered pages (Jinja2), live updates over
server-sent events, a cookie session backed by the API keys, and the offline `/docs`.

Every script and style is vendored in `static/vendor/` (versions, licences and checksums
in `static/vendor/VENDORED.md`); no page loads anything from another host.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from whoosh_shared.runtime.bus import Bus

from whoosh_gateway.errors import ApiError
from whoosh_gateway.ui import (
    actions,
    budget_pages,
    docs,
    pages,
    stream_route,
    thread_pages,
    workflow_pages,
)
from whoosh_gateway.ui.auth import LoginRequired, UiRefused, current_viewer
from whoosh_gateway.ui.rendering import HERE, page
from whoosh_gateway.ui.session import SessionSeal, shared_secret


def install(app: FastAPI) -> None:
    """Routes, static files and the HTML error pages of the dashboard (and /docs)."""
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    modules = (actions, pages, workflow_pages, thread_pages, budget_pages, stream_route, docs)
    for module in modules:
        app.include_router(module.router)
    api_error_handler = app.exception_handlers[ApiError]

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = "/ui/login" + (f"?why={quote(exc.message)}" if exc.message else "")
        if request.url.path.startswith("/ui/stream"):
            return Response("sign in first", status_code=401)
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(UiRefused)
    async def _refused(request: Request, exc: UiRefused) -> HTMLResponse:
        return await _error_page(request, exc.status, exc.message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if not request.url.path.startswith("/ui"):
            return await api_error_handler(request, exc)  # type: ignore[no-any-return]
        return await _error_page(request, exc.status, exc.message)


async def start(app: FastAPI, bus: Bus) -> None:
    """After the bus connects: the session secret every gateway shares."""
    app.state.ui_seal = SessionSeal(await shared_secret(bus.js))


async def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        viewer = await current_viewer(request)
    except (LoginRequired, ApiError):
        viewer = None
    return page(request, "error", viewer, status, status=status, message=message)
