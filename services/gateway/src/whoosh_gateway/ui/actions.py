"""The dashboard's forms (POST): sign in and out, and the buttons that change things.

Each action sends the same command as its `/api/v1` route, with the signed-in key as its
actor, after `acting_viewer` checked same-site, the CSRF token and the role. Success
redirects (303) to the page that shows the result; a refusal renders the page again or
an error page with the reason, never a JSON error or a trace.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.api_keys import Role, generate_key
from whoosh_shared.contract.queries import ApiKeyList, GetTask, ListApiKeys, TaskView

from whoosh_gateway.api_models import TaskSubmission
from whoosh_gateway.errors import ApiError, describe_validation
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.routes.tasks import submit_command
from whoosh_gateway.ui.auth import (
    LoginRequired,
    UiRefused,
    acting_viewer,
    check_same_site,
    seal_of,
)
from whoosh_gateway.ui.rendering import page
from whoosh_gateway.ui.session import COOKIE, COOKIE_PATH, SESSION_MAX_AGE_S

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, why: str | None = None) -> HTMLResponse:
    return page(request, "login", None, message=why)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    check_same_site(request)
    form = await request.form()
    key = str(form.get("api_key") or "").strip()
    if not key:
        return page(request, "login", None, 400, message="enter an API key (whk_...)")
    address = request.client.host if request.client else "unknown"
    try:
        await state_of(request).verifier.verify(key, address)
    except ApiError as exc:
        if exc.status not in (401, 403, 429):
            raise
        return page(request, "login", None, exc.status, message=f"sign-in refused: {exc.message}")
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        COOKIE,
        seal_of(request).seal(key),
        max_age=SESSION_MAX_AGE_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    check_same_site(request)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.post("/tasks", response_class=HTMLResponse)
async def submit(request: Request) -> Response:
    viewer = await acting_viewer(request, Role.OPERATOR)
    form = await request.form()
    fields: dict[str, Any] = {"prompt": str(form.get("prompt") or "")}
    for name in ("model", "agent"):
        if form.get(name):
            fields[name] = str(form.get(name)).strip()
    if form.get("capability"):
        fields["capabilities"] = [str(form.get("capability")).strip()]
    if form.get("priority"):
        fields["priority"] = str(form.get("priority"))
    if form.get("timeout_s"):
        fields["timeout_s"] = str(form.get("timeout_s"))
    try:
        body = TaskSubmission.model_validate(fields)
    except ValidationError as exc:
        message, _ = describe_validation(list(exc.errors()))
        raise UiRefused(422, f"task not submitted: {message}") from None
    state = state_of(request)
    try:
        reply = await state.coordinator.send(submit_command(state, body, viewer.caller))
    except ApiError as exc:
        raise UiRefused(exc.status, f"task refused ({exc.code}): {exc.message}") from None
    return RedirectResponse(f"/ui/tasks/{reply.ids['task_id']}", status_code=303)


@router.post("/tasks/{task_id}/cancel")
async def cancel(request: Request, task_id: UUID) -> Response:
    viewer = await acting_viewer(request, Role.OPERATOR)
    command = c.CancelTask(
        task_id=task_id, reason="cancelled from the dashboard", actor=viewer.caller.actor
    )
    await _send(request, command, "cancel")
    return RedirectResponse(f"/ui/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/rerun")
async def run_again(request: Request, task_id: UUID) -> Response:
    """Submit the same task again (same prompt, needs and options) as a new task."""
    viewer = await acting_viewer(request, Role.OPERATOR)
    state = state_of(request)
    old = await state.coordinator.ask(GetTask(task_id=task_id), TaskView)
    body = TaskSubmission(
        prompt=old.prompt,
        priority=old.priority,
        capabilities=old.capabilities,
        agent_type=old.agent_type,  # type: ignore[arg-type]
        model=old.model,
        agent=old.pinned_agent,
        timeout_s=old.timeout_s,
        retry=c.RetryPolicy(max_attempts=old.max_attempts),
        llm=old.llm,
    )
    reply = await _send(request, submit_command(state, body, viewer.caller), "run again")
    return RedirectResponse(f"/ui/tasks/{reply.ids['task_id']}", status_code=303)


@router.post("/agents/{name}/{action}")
async def toggle_agent(request: Request, name: str, action: str) -> Response:
    viewer = await acting_viewer(request, Role.OPERATOR)
    commands = {"enable": c.EnableAgent, "disable": c.DisableAgent}
    if action not in commands:
        raise UiRefused(404, f"no agent action {action!r}")
    try:
        command = commands[action](name=name, actor=viewer.caller.actor)
    except ValidationError:
        raise UiRefused(404, f"{name[:80]!r} is not an agent name") from None
    await _send(request, command, action)
    return RedirectResponse(f"/ui/agents/{name}", status_code=303)


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request) -> Response:
    viewer = await acting_viewer(request, Role.ADMIN)
    form = await request.form()
    key = generate_key()
    try:
        command = c.CreateApiKey(
            prefix=key.prefix,
            key_hash=key.key_hash,
            name=str(form.get("name") or "").strip(),
            role=Role(str(form.get("role") or "viewer")),
            actor=viewer.caller.actor,
        )
    except (ValidationError, ValueError) as exc:
        raise UiRefused(422, f"key not created: {exc}") from None
    await _send(request, command, "create key")
    keys = await state_of(request).coordinator.ask(ListApiKeys(), ApiKeyList)
    return page(request, "keys", viewer, keys=keys.keys, created=key.token)


@router.post("/keys/{prefix}/revoke")
async def revoke_key(request: Request, prefix: str) -> Response:
    viewer = await acting_viewer(request, Role.ADMIN)
    state = state_of(request)
    seen = state.verifier.expect_revocation(prefix)
    try:
        command = c.RevokeApiKey(prefix=prefix, actor=viewer.caller.actor)
    except ValidationError:
        raise UiRefused(404, f"{prefix[:40]!r} is not a key prefix") from None
    await _send(request, command, "revoke")
    await state.verifier.revoked(prefix, seen)
    return RedirectResponse("/ui/keys", status_code=303)


async def _send(request: Request, command: Any, what: str) -> c.CommandReply:
    try:
        return await state_of(request).coordinator.send(command)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise LoginRequired(exc.message) from None
        raise UiRefused(exc.status, f"{what} refused ({exc.code}): {exc.message}") from None
