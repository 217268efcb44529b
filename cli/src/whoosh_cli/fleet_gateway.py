"""The fleet through the gateway: REST for reads and writes, the WebSocket to follow a
task live. Works from any machine that reaches the gateway, with an API key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import SubmitTask
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.explain import TaskExplanation
from whoosh_shared.contract.gpu_readings import Gpu, parse_gpus
from whoosh_shared.contract.queries import (
    AgentView,
    AlertList,
    EventPage,
    FleetStats,
    ListAlerts,
    ListTasks,
    TaskPage,
    TaskView,
)

from whoosh_cli.fleet import WriteResult
from whoosh_cli.gateway_session import (
    GatewayRejected,
    GatewaySession,
    NoAnswerError,
    raise_for_usage,
)
from whoosh_cli.submit_retry import with_retries
from whoosh_cli.task_outcome import Outcome

AGENT_VIEW_FIELDS = frozenset(AgentView.model_fields)
GATEWAY_SETS = {"actor", "max_active_tasks"}  # the gateway fills these from the key
NOT_IN_THE_BODY = GATEWAY_SETS | {"idempotency_key"}  # a header (REST), beside the task (WS)


def submission(command: SubmitTask) -> dict[str, Any]:
    return command.model_dump(mode="json", exclude=NOT_IN_THE_BODY, exclude_defaults=True)


def unanswered(exc: Exception) -> bool:
    """A submit that may not have been recorded: sent again with the same key."""
    return (isinstance(exc, GatewayRejected) and exc.status == 503) or isinstance(
        exc, NoAnswerError
    )


class GatewayFleet:
    def __init__(self, session: GatewaySession) -> None:
        self.session = session
        self.where = session.url

    async def agents(self) -> list[AgentView]:
        found: list[AgentView] = []
        cursor = None
        while True:
            page = await self.session.call(
                "GET", "/agents", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
            )
            found += [_agent_view(item) for item in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    async def register(self, spec: AgentSpec) -> WriteResult:
        body = {"spec": spec.model_dump(mode="json", exclude_defaults=True)}
        return await self._write("POST", "/agents", json=body)

    async def set_enabled(self, name: str, enabled: bool) -> WriteResult:
        return await self._write("POST", f"/agents/{name}/{'enable' if enabled else 'disable'}")

    async def set_weight(self, name: str, weight: int) -> WriteResult:
        return await self._write("PUT", f"/agents/{name}/weight", json={"weight": weight})

    async def remove(self, name: str) -> WriteResult:
        return await self._write("DELETE", f"/agents/{name}")

    async def submit(self, command: SubmitTask) -> WriteResult:
        """POSTed again with the same Idempotency-Key while the gateway answers 503."""
        headers = {"Idempotency-Key": command.idempotency_key} if command.idempotency_key else {}

        async def post() -> WriteResult:
            answer = await self.session.call("POST", "/tasks", json=submission(command),
                                             headers=headers)  # fmt: skip
            return WriteResult(True, ids=_ids_of(answer), extra={})

        retryable = unanswered if command.idempotency_key else (lambda _exc: False)
        try:
            return await with_retries(post, retryable, "submit")
        except GatewayRejected as rejected:
            raise_for_usage(rejected)
            return WriteResult(False, code=rejected.code, reason=rejected.reason)

    async def submit_and_follow(
        self, command: SubmitTask, live_output: bool, verbose: bool = False
    ) -> Outcome:
        from whoosh_cli.ws_follow import follow_over_websocket  # websockets: only when used

        return await follow_over_websocket(
            self.session.url,
            self._api_key(),
            submission(command),
            live_output,
            idempotency_key=command.idempotency_key,
            verbose=verbose,
        )

    async def follow(self, task_id: UUID, live_output: bool, verbose: bool = False) -> Outcome:
        from whoosh_cli.ws_follow import watch_over_websocket

        await self.task(task_id)  # an unknown id is a clear 404 here, not an endless watch
        return await watch_over_websocket(
            self.session.url, self._api_key(), task_id, live_output, verbose=verbose
        )

    async def gpus(self) -> list[Gpu]:
        """The monitor's GPU gauges through the gateway's /metrics; none when the gateway
        serves no metrics or they fail (a view, never a reason to stop)."""
        try:
            response = await self.session.client.get("/metrics")
        except httpx.HTTPError:
            return []
        return parse_gpus(response.text) if response.is_success else []

    def _api_key(self) -> str | None:
        api_key = self.session.client.headers.get("authorization", "").removeprefix("Bearer ")
        return api_key or None

    async def task(self, task_id: UUID) -> TaskView:
        return await self.session.get(f"/tasks/{task_id}", TaskView)

    async def explain(self, task_id: UUID) -> TaskExplanation:
        return await self.session.get(f"/tasks/{task_id}/explain", TaskExplanation)

    async def tasks(self, query: ListTasks) -> TaskPage:
        params = query.model_dump(mode="json", exclude_none=True)
        params["cursor"] = params.pop("after", None)
        page = await self.session.call(
            "GET", "/tasks", params={k: v for k, v in params.items() if v is not None}
        )
        return TaskPage(tasks=page["items"], next_cursor=page.get("next_cursor"))

    async def cancel(self, task_id: UUID, reason: str) -> WriteResult:
        return await self._write("POST", f"/tasks/{task_id}/cancel", json={"reason": reason})

    async def events(self, task_id: UUID) -> list[EventEnvelope]:
        return await stored_events(self.session, f"/tasks/{task_id}/events")

    async def stats(self) -> FleetStats:
        return await self.session.get("/stats", FleetStats)

    async def alerts(self, query: ListAlerts) -> AlertList:
        return await self.session.get(
            "/alerts", AlertList, status=query.status and query.status.value, limit=query.limit
        )

    async def _write(self, method: str, path: str, **kwargs: Any) -> WriteResult:
        try:
            answer = await self.session.call(method, path, **kwargs)
        except GatewayRejected as rejected:
            raise_for_usage(rejected)
            return WriteResult(False, code=rejected.code, reason=rejected.reason)
        return WriteResult(True, ids=_ids_of(answer), extra={})


def _agent_view(item: dict[str, Any]) -> AgentView:
    return AgentView.model_validate({k: v for k, v in item.items() if k in AGENT_VIEW_FIELDS})


def _ids_of(answer: Any) -> dict[str, str]:
    if not isinstance(answer, dict):
        return {}
    if "task_id" in answer:
        return {"task_id": str(answer["task_id"])}
    agent = answer.get("agent")
    if isinstance(agent, dict):
        return {"agent_id": str(agent.get("id")), "name": str(agent.get("spec", {}).get("name"))}
    if "id" in answer:
        return {"task_id": str(answer["id"])}
    return {k: str(v) for k, v in answer.items() if isinstance(v, str)}


async def stored_events(session: GatewaySession, path: str) -> list[EventEnvelope]:
    """An aggregate's whole stored history, read page by page from `path`."""
    found: list[EventEnvelope] = []
    after = 0
    while True:
        page = await session.get(path, EventPage, after=after, limit=1000)
        found += page.events
        if page.next_cursor is None:
            return found
        after = page.next_cursor
