"""Queries answered from the projections: never from the store, never blocking writers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from whoosh_shared import queries as q
from whoosh_shared.queries import QueryReply

from whoosh_coordinator.commands import describe_validation_error
from whoosh_coordinator.projections import FleetProjection

QUERIES_BY_SUBJECT: dict[str, type[q.Query]] = {
    cls.SUBJECT: cls for cls in (q.GetTask, q.ListTasks, q.ListAgents, q.GetAgent, q.GetStats)
}


class QueryHandler:
    def __init__(self, projection: FleetProjection) -> None:
        self.projection = projection
        self._dispatch: dict[type[q.Query], Callable[[Any], QueryReply]] = {
            q.GetTask: self._get_task,
            q.ListTasks: self._list_tasks,
            q.ListAgents: self._list_agents,
            q.GetAgent: self._get_agent,
            q.GetStats: lambda _: QueryReply.ok(self.projection.stats()),
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
        return self._dispatch[model](query)

    def _get_task(self, query: q.GetTask) -> QueryReply:
        view = self.projection.tasks.get(query.task_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown task {query.task_id}")
        return QueryReply.ok(view)

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
            if query.status and task.status is not query.status:
                continue
            if query.agent and task.agent != query.agent and query.agent not in task.tried_agents:
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
