"""Budgets and usage on the dashboard: every budget with its limits, use, reservations and
state (warned, exhausted), and the whole usage record per key, agent and model; admins
also get the form that sets a budget (the same SetBudget as `PUT /api/v1/budgets/{scope}`
and `whoosh budget set`). The page refreshes itself when a task ends or a budget changes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.budgets import SCOPE_PATTERN, BudgetList, ListBudgets, Period, SetBudget
from whoosh_shared.contract.usage import GetUsage, UsageReport

from whoosh_gateway.errors import ApiError, describe_validation
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.ui.auth import LoginRequired, UiRefused, Viewer, acting_viewer, current_viewer
from whoosh_gateway.ui.rendering import page

router = APIRouter(prefix="/ui", include_in_schema=False)
SignedIn = Annotated[Viewer, Depends(current_viewer)]
PERIODS: tuple[str, ...] = tuple(p.value for p in Period)


@router.get("/budgets", response_class=HTMLResponse)
async def budgets_page(request: Request, viewer: SignedIn) -> HTMLResponse:
    coordinator = state_of(request).coordinator
    budgets = await coordinator.ask(ListBudgets(), BudgetList)
    usage = await coordinator.ask(GetUsage(), UsageReport)
    return page(
        request, "budgets", viewer, budgets=budgets.budgets, usage=usage, periods=PERIODS
    )  # fmt: skip


@router.post("/budgets", response_class=HTMLResponse)
async def set_budget(request: Request) -> Response:
    viewer = await acting_viewer(request, Role.ADMIN)
    form = await request.form()
    fields = _budget_fields({k: str(v).strip() for k, v in form.items() if k != "csrf"})
    try:
        command = SetBudget(actor=viewer.caller.actor, **fields)
    except ValidationError as exc:
        message, _ = describe_validation(list(exc.errors()))
        raise UiRefused(422, f"budget not set: {message}") from None
    try:
        await state_of(request).coordinator.send(command)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise LoginRequired(exc.message) from None
        raise UiRefused(exc.status, f"budget refused ({exc.code}): {exc.message}") from None
    return RedirectResponse("/ui/budgets", status_code=303)


def _budget_fields(form: dict[str, str]) -> dict[str, Any]:
    """The form's text fields as SetBudget's: empty limits are absent, the scope checked
    first so that its error names the accepted shapes."""
    scope = form.get("scope", "")
    if not re.match(SCOPE_PATTERN, scope):
        raise UiRefused(
            422, f"budget not set: scope {scope[:80]!r} is not global, key:P, agent:N, "
            "thread:ID or project:N",
        )  # fmt: skip
    fields: dict[str, Any] = {"scope": scope}
    for name in ("tokens", "usd", "period", "warn_at", "on_exhausted"):
        if form.get(name):
            fields[name] = form[name]
    return fields
