"""Queries answered from the projections (never blocking writers), and event histories
answered from the store, which the coordinator owns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from whoosh_shared.contract import queries as q
from whoosh_shared.contract import threads as t
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.addresses import AddressError, parse_address, resolve
from whoosh_shared.contract.agent_env import mask_env, mask_envelope
from whoosh_shared.contract.agent_fit import FindAgents
from whoosh_shared.contract.budgets import BudgetList, ListBudgets
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.explain import ExplainTask, TaskExplanation
from whoosh_shared.contract.limits import PREVIEW_CHARS, LimitSettings, preview
from whoosh_shared.contract.queries import QueryReply
from whoosh_shared.contract.usage import GetUsage
from whoosh_shared.runtime.loop_reports import RemoteLoops
from whoosh_shared.runtime.supervision import LoopHealth

from whoosh_coordinator.agents.finder import find_agents
from whoosh_coordinator.commands import describe_validation_error
from whoosh_coordinator.history import aggregate_events
from whoosh_coordinator.keys.registry import KeyRefused
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.scheduling.explain import explain
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import Needs
from whoosh_coordinator.store import WhooshStore, read_envelopes

log = logging.getLogger(__name__)
STORED_TASK_EVENTS = 100_000  # a task's whole history (progress milestones included)
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
        FindAgents,
        *w.WORKFLOW_QUERIES,
        ExplainTask,
        t.GetThread,
        t.ListThreads,
        t.ResolveAddress,
        ListBudgets,
        GetUsage,
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
        health: LoopHealth | None = None,
        limits: LimitSettings | None = None,
    ) -> None:
        self.health = health or LoopHealth()
        self.remote_loops = RemoteLoops()  # executors' and monitors' loops, as reported
        self.limits = limits or LimitSettings()
        self.projection = projection
        self.store = store
        self.clock = clock
        self._dispatch: dict[type[q.Query], Callable[[Any], QueryReply]] = {
            q.GetTask: self._get_task,
            q.ListTasks: self._list_tasks,
            q.ListAgents: self._list_agents,
            q.GetAgent: self._get_agent,
            q.GetStats: self._get_stats,
            q.GetEvents: self._get_events,
            q.VerifyApiKey: self._verify_api_key,
            q.ListApiKeys: lambda _: QueryReply.ok(
                q.ApiKeyList(keys=self.projection.api_keys.listed())
            ),
            ExplainTask: self._explain_task,
            q.ListAlerts: lambda query: QueryReply.ok(
                q.AlertList(alerts=self.projection.alerts.listed(query.status, query.limit))
            ),
            FindAgents: lambda query: QueryReply.ok(
                find_agents(
                    query,
                    self.projection.agents.values(),
                    self.projection.rotation,
                    self.clock(),
                )
            ),
            **workflow_queries(self.projection),
            t.GetThread: self._get_thread,
            t.ListThreads: lambda query: QueryReply.ok(
                t.ThreadList(threads=self.projection.threads.listed(query.state, query.limit))
            ),
            t.ResolveAddress: self._resolve,
            ListBudgets: lambda _: QueryReply.ok(
                BudgetList(budgets=self.projection.budgets.listed())
            ),
            GetUsage: lambda _: QueryReply.ok(self.projection.usage.report()),
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
        view = self.projection.tasks.get(query.task_id) or self._stored_task(query.task_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown task {query.task_id}")
        return QueryReply.ok(view)

    def _get_stats(self, _: q.GetStats) -> QueryReply:
        stats = self.projection.stats()
        stats.down = {**self.health.down_now(), **self.remote_loops.down_now()}
        return QueryReply.ok(stats)

    def _explain_task(self, query: ExplainTask) -> QueryReply:
        """Where the scheduler would place the task now, and why each agent would or not."""
        view = self.projection.tasks.get(query.task_id) or self._stored_task(query.task_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown task {query.task_id}")
        agents = self.projection.agents.values()
        forecast = SlotForecast.of(agents, self.projection.tasks, self.clock())
        rotation = self.projection.rotation  # explain only peeks: it takes no turn
        found = explain(Needs.of(view), agents, rotation=rotation, forecast=forecast)
        if view.status is not TaskStatus.QUEUED:  # placed already: the fleet has moved on
            verb = "ran on" if view.status.terminal else "is on"
            where = f"{verb} {view.agent}" if view.agent else view.status.value
            found.decision = f"{where}; submitted now: {found.decision}"
        return QueryReply.ok(
            TaskExplanation(
                task_id=view.id, status=view.status.value, agent=view.agent, **dict(found)
            )
        )

    def _stored_task(self, task_id: UUID) -> q.TaskView | None:
        """A task the projection no longer keeps (finished long ago): its view folded from
        its own events in the store, by the same fold, in a projection of its own (so the
        live agents' counters are not touched)."""
        if self.store is None:
            return None
        events = aggregate_events(self.store, task_id, 0, STORED_TASK_EVENTS)
        if not events or events[0].aggregate_type != "task":
            return None
        alone = FleetProjection()
        for envelope in events:
            alone.apply(envelope)
        return alone.tasks.get(task_id)

    def _list_tasks(self, query: q.ListTasks) -> QueryReply:
        """Newest first; the cursor is the submission sequence of the last task returned.

        A page holds summaries (prompt and output cut to a preview; GET a task for more)
        and ends at `limit` tasks or at limits.reply_bytes, whichever comes first, so a
        list of huge tasks still fits in one bus reply."""
        before = None
        if query.after is not None:
            if not query.after.isdigit():
                return QueryReply.error("invalid", f"invalid cursor {query.after!r}")
            before = int(query.after)
        tasks = sorted(self.projection.tasks.values(), key=lambda t: -t.sequence)
        page: list[q.TaskView] = []
        size, more = 0, False
        for task in tasks:
            if before is not None and task.sequence >= before:
                continue
            if not _matches(task, query):
                continue
            if len(page) == query.limit:
                more = True
                break
            summary = _summary(task)
            cost = len(summary.model_dump_json())
            if page and size + cost > self.limits.reply_bytes:
                more = True
                break
            page.append(summary)
            size += cost
        cursor = str(page[-1].sequence) if more and page else None
        return QueryReply.ok(q.TaskPage(tasks=page, next_cursor=cursor))

    def _list_agents(self, query: q.ListAgents) -> QueryReply:
        agents = sorted(self.projection.agents.values(), key=lambda a: a.spec.name)
        if not query.with_env:
            agents = [_env_masked(a) for a in agents]
        return QueryReply.ok(q.AgentList(agents=agents))

    def _get_agent(self, query: q.GetAgent) -> QueryReply:
        agent = self.projection.agent_by_name(query.name)
        if agent is None:
            return QueryReply.error("not_found", f"unknown agent '{query.name}'")
        return QueryReply.ok(agent if query.with_env else _env_masked(agent))

    def _get_events(self, query: q.GetEvents) -> QueryReply:
        """One aggregate's history (by its id) or the global log after a position."""
        if self.store is None:
            return QueryReply.error("unavailable", "this coordinator does not read its store")
        if query.aggregate_id is not None:
            events = aggregate_events(self.store, query.aggregate_id, query.after, query.limit + 1)
        else:
            events = read_envelopes(self.store, query.after, query.limit + 1)
        page, size = [], 0
        for event in events[: query.limit]:
            size += len(event.model_dump_json())
            if page and size > self.limits.reply_bytes:
                break
            page.append(mask_envelope(event))
        more = len(events) > len(page)
        cursor = page[-1].notification_id if more and page else None
        return QueryReply.ok(q.EventPage(events=page, next_cursor=cursor))

    def _get_thread(self, query: t.GetThread) -> QueryReply:
        view = self.projection.threads.threads.get(query.thread_id)
        if view is None:
            return QueryReply.error("not_found", f"unknown thread {query.thread_id}")
        return QueryReply.ok(view)

    def _resolve(self, query: t.ResolveAddress) -> QueryReply:
        """The agents an address names, in a deterministic order (enabled first)."""
        try:
            address = parse_address(query.address)
        except AddressError as exc:
            return QueryReply.error("invalid", str(exc))
        agents = self.projection.agents.values()
        enabled = {a.spec.name for a in agents if a.enabled}
        names = resolve(address, [a.spec for a in agents], enabled)
        return QueryReply.ok(t.Resolved(address=str(address), agents=names))

    def _verify_api_key(self, query: q.VerifyApiKey) -> QueryReply:
        try:
            view = self.projection.api_keys.verify(query.prefix, query.key_hash, self.clock())
        except KeyRefused as refused:
            return QueryReply.error("unauthorized", str(refused))
        return QueryReply.ok(view)


def _summary(task: q.TaskView) -> q.TaskView:
    """A task as lists show it: prompt and output as previews, and the end of its stderr."""
    texts = (task.prompt, task.output, task.stderr)
    if all(len(text) <= PREVIEW_CHARS for text in texts):
        return task
    return task.model_copy(
        update={
            "prompt": preview(task.prompt),
            "output": preview(task.output),
            "stderr": task.stderr[-PREVIEW_CHARS:],
        }
    )


def _env_masked(agent: q.AgentView) -> q.AgentView:
    """The agent as readers see it: env values masked (see whoosh_shared.contract.agent_env)."""
    if not agent.spec.env:
        return agent
    spec = agent.spec.model_copy(update={"env": mask_env(agent.spec.env)})
    return agent.model_copy(update={"spec": spec})


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


def workflow_queries(
    projection: FleetProjection,
) -> dict[type[q.Query], Callable[[Any], QueryReply]]:
    """Workflows and executions, answered from their projection (steps joined with tasks)."""
    views = projection.workflows

    def get_workflow(query: w.GetWorkflow) -> QueryReply:
        view = views.workflow(query.name, query.version)
        if view is None:
            what = f" version {query.version}" if query.version else ""
            return QueryReply.error("not_found", f"unknown workflow '{query.name}'{what}")
        return QueryReply.ok(view)

    def get_execution(query: w.GetExecution) -> QueryReply:
        view = views.execution(query.execution_id, projection.tasks)
        if view is None:
            return QueryReply.error("not_found", f"unknown execution {query.execution_id}")
        return QueryReply.ok(view)

    def list_executions(query: w.ListExecutions) -> QueryReply:
        found = views.listed(projection.tasks, query.workflow, query.status, query.limit)
        return QueryReply.ok(w.ExecutionList(executions=found))

    return {
        w.ListWorkflows: lambda _: QueryReply.ok(
            w.WorkflowList(workflows=sorted(views.workflows.values(), key=lambda v: v.name))
        ),
        w.GetWorkflow: get_workflow,
        w.GetExecution: get_execution,
        w.ListExecutions: list_executions,
    }
