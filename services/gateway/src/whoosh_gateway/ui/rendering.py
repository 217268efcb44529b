"""Templates and the small things every page needs (who is signed in, notices, links).

A page is a template plus a route: a later aggregate (workflow executions, threads) adds
its page by dropping `templates/<name>.html` (extending `base.html`) and one route in
`pages.py`, and a nav entry in `NAV`; the live stream already carries every aggregate's
events (as `fleet_event`), so its page can refresh from them without new plumbing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from whoosh_gateway.ui.auth import Viewer

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# (label, path, least role): the navigation bar, in order.
NAV: list[tuple[str, str, str]] = [
    ("Overview", "/ui/", "viewer"),
    ("Agents", "/ui/agents", "viewer"),
    ("Tasks", "/ui/tasks", "viewer"),
    ("Executions", "/ui/executions", "viewer"),
    ("Threads", "/ui/threads", "viewer"),
    ("Alerts", "/ui/alerts", "viewer"),
    ("Budgets", "/ui/budgets", "viewer"),
    ("Keys", "/ui/keys", "admin"),
    ("Audit", "/ui/audit", "admin"),
]


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return f"{max(seconds, 0):.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def first_line(text: str, width: int = 80) -> str:
    lines = (text or "").strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def tail_lines(text: str, count: int) -> str:
    """The last `count` lines: what the output pane keeps (the rest is downloadable)."""
    lines = (text or "").split("\n")
    return "\n".join(lines[-count:])


def line_count(text: str) -> int:
    return len((text or "").split("\n"))


templates.env.filters["ago"] = ago
templates.env.filters["tail_lines"] = tail_lines
templates.env.filters["line_count"] = line_count
templates.env.filters["first_line"] = first_line
templates.env.globals["duration"] = duration


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render `templates/<name>.html` with what the layout needs."""
    nav = [(label, path) for label, path, role in NAV if viewer is not None and viewer.can(role)]
    return templates.TemplateResponse(
        request,
        f"{name}.html",
        {"viewer": viewer, "nav": nav, "page_name": name, "now": datetime.now(UTC), **context},
        status_code=status_code,
    )
