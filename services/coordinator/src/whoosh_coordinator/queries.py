"""Queries answered from the projections (never blocking writers), and event histories
answered from the store, which the coordinator owns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from whoosh_shared import queries as q
from whoosh_shared.enums import TaskStatus
from whoosh_shared.explain import ExplainTask, TaskExplanation
from whoosh_shared.queries import QueryReply

from whoosh_coordinator.api_key_registry import KeyRefused
from whoosh_coordinator.commands import describe_validation_error
from whoosh_coordinator.explain import explain
from whoosh_coordinator.history import aggregate_events
from whoosh_coordinator.lookahead import SlotForecast
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.scheduler import Needs
from whoosh_coordinator.store import WhooshStore, read_envelopes

log = logging.getLogger(__name__)
QUERIES_BY_SUBJECT: dict[str, type[q.Query]] = {
    cls.SUBJECT: cls
    for cls in (
        q.GetTask,
        q.ListTasks,
        q.ListAgents,
        q.GetAgent,
        q.GetStats,
        q.GetEvents,
        q.VerifyApiKey,
        q.ListApiKeys,
        q.ListAlerts,
        ExplainTask,
    )
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class QueryHandler:
    def __init__(
        self,
        projection: FleetProjection,
        store: WhooshStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.projection = projection
        self.store = store
        self.clock = clock
        self._dispatch: dict[type[q.Query], Callable[[Any], QueryReply]] = {
            q.GetTask: self._get_task,
            q.ListTasks: self._list_tasks,
            q.ListAgents: self._list_agents,
            q.GetAgent: self._get_agent,
            q.GetStats: lambda _: QueryReply.ok(self.projection.stats()),
            q.GetEvents: self._get_events,
            q.VerifyApiKey: self._verify_api_key,
            q.ListApiKeys: lambda _: QueryReply.ok(
                q.ApiKeyList(keys=self.projection.api_keys.listed())
            ),
            ExplainTask: self._explain_task,
            q.ListAlerts: lambda query: QueryReply.ok(
                q.AlertList(alerts=self.projection.alerts.listed(query.status, query.limit))
            ),
        }

    def handle_raw(self, subject: str, body: bytes) -> QueryReply:
        model = QUERIES_BY_SUBJECT.get(subject)
        if model is None:
            return QueryReply.error("invalid", f"unknown query subject '{subject}'")
        try:
            query = model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            return QueryReply.error(
                "invalid", f"invalid {model.__name__}: {describe_validation_error(exc)}"
            )
        try:
            return self._dispatch[model](query)
        except Exception:  # a bug must cost one answer, never the subscription
            log.exception("query %s failed", model.__name__)
            return QueryReply.error("internal", f"internal error answering {model.__name__}")

    def _get_task(self, query: q.GetTask) -> QueryReply:
        view = self.projection.tasks.get(query.task_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown task {query.task_id}")
        return QueryReply.ok(view)

    def _explain_task(self, query: ExplainTask) -> QueryReply:
        """Where the scheduler would place the task now, and why each agent would or not."""
        view = self.projection.tasks.get(query.task_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown task {query.task_id}")
        agents = self.projection.agents.values()
        forecast = SlotForecast.of(agents, self.projection.tasks, self.clock())
        found = explain(Needs.of(view), agents, forecast=forecast)
        if view.status is not TaskStatus.QUEUED:  # placed already: the fleet has moved on
            verb = "ran on" if view.status.terminal else "is on"
            where = f"{verb} {view.agent}" if view.agent else view.status.value
            found.decision = f"{where}; submitted now: {found.decision}"
        return QueryReply.ok(
            TaskExplanation(
                task_id=view.id, status=view.status.value, agent=view.agent, **dict(found)
            )
        )

    def _list_tasks(self, query: q.ListTasks) -> QueryReply:
        """Newest first; the cursor is the submission sequence of the last task returned."""
        before = None
        if query.after is not None:
            if not query.after.isdigit():
                return QueryReply.error("invalid", f"invalid cursor {query.after!r}")
            before = int(query.after)
        tasks = sorted(self.projection.tasks.values(), key=lambda t: -t.sequence)
        selected = []
        for task in tasks:
            if before is not None and task.sequence >= before:
                continue
            if not _matches(task, query):
                continue
            selected.append(task)
            if len(selected) > query.limit:
                break
        page, more = selected[: query.limit], len(selected) > query.limit
        cursor = str(page[-1].sequence) if more and page else None
        return QueryReply.ok(q.TaskPage(tasks=page, next_cursor=cursor))

    def _list_agents(self, _: q.ListAgents) -> QueryReply:
        agents = sorted(self.projection.agents.values(), key=lambda a: a.spec.name)
        return QueryReply.ok(q.AgentList(agents=agents))

    def _get_agent(self, query: q.GetAgent) -> QueryReply:
        agent = self.projection.agent_by_name(query.name)
        if agent is None:
            return QueryReply.error("not_found", f"unknown agent '{query.name}'")
        return QueryReply.ok(agent)

    def _get_events(self, query: q.GetEvents) -> QueryReply:
        """One aggregate's history (by its id) or the global log after a position."""
        if self.store is None:
            return QueryReply.error("unavailable", "this coordinator does not read its store")
        if query.aggregate_id is not None:
            events = aggregate_events(self.store, query.aggregate_id, query.after, query.limit + 1)
        else:
            events = read_envelopes(self.store, query.after, query.limit + 1)
        page = events[: query.limit]
        more = len(events) > query.limit
        cursor = page[-1].notification_id if more and page else None
        return QueryReply.ok(q.EventPage(events=page, next_cursor=cursor))

    def _verify_api_key(self, query: q.VerifyApiKey) -> QueryReply:
        try:
            view = self.projection.api_keys.verify(query.prefix, query.key_hash, self.clock())
        except KeyRefused as refused:
            return QueryReply.error("unauthorized", str(refused))
        return QueryReply.ok(view)


def _matches(task: q.TaskView, query: q.ListTasks) -> bool:
    if query.status and task.status is not query.status:
        return False
    if query.agent and task.agent != query.agent and query.agent not in task.tried_agents:
        return False
    if query.capability and query.capability not in task.capabilities:
        return False
    if query.submitted_after and task.submitted_at < query.submitted_after:
        return False
    return not (query.submitted_before and task.submitted_at >= query.submitted_before)
