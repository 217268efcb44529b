"""Per-task metrics from the event stream: durations, time to first token, tokens, outcomes.

The monitor listens to every relayed event (core NATS on `whoosh.evt.>`: nothing
durable, a monitor restart starts its counters at zero, which Prometheus handles as a
counter reset). Events name the task, not the agent or model, so those are remembered
from TaskSubmitted / TaskAssigned for the tasks in flight; a completion of a task the
monitor never saw assigned (it started later) is looked up with `resolve`.
A republished event (same envelope id) is counted once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError
from whoosh_shared.contract import events as ev
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract.events import EventEnvelope

from whoosh_monitor.agent_window import AgentWindow

KEPT_TASKS = 50_000
KEPT_IDS = 10_000

Resolve = Callable[[UUID], Awaitable[tuple[str | None, str | None]]]


class EventMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        window: AgentWindow,
        agent_model: Callable[[str], str | None],
        resolve: Resolve | None = None,
    ) -> None:
        """`agent_model(agent)`: the agent's configured model (for tasks that name none);
        `resolve(task_id)`: (agent, model) of a task this monitor has not followed."""
        self.window = window
        self.agent_model = agent_model
        self.resolve = resolve
        self._tasks: OrderedDict[UUID, tuple[str | None, str | None]] = OrderedDict()
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.malformed = 0
        by_model = ["agent", "model"]
        self.duration = Histogram(
            m.TASK_DURATION,
            "Duration of completed task attempts",
            by_model,
            buckets=m.DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            m.TIME_TO_FIRST_TOKEN,
            "Time from request to the first token of completed LLM tasks",
            by_model,
            buckets=m.TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens_in = Counter(
            m.INPUT_TOKENS.removesuffix("_total"), "Prompt tokens", by_model, registry=registry
        )
        self.tokens_out = Counter(
            m.OUTPUT_TOKENS.removesuffix("_total"), "Generated tokens", by_model, registry=registry
        )
        self.finished = Counter(
            m.TASKS_FINISHED.removesuffix("_total"),
            "Tasks that ended, by the agent of their last attempt and how they ended",
            ["agent", "status"],
            registry=registry,
        )
        self.retries = Counter(
            m.TASK_RETRIES.removesuffix("_total"),
            "Attempts that failed and sent their task back to the queue",
            ["agent"],
            registry=registry,
        )

    async def handle(self, data: bytes) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(data)
            payload = envelope.payload()
        except (ValidationError, KeyError):
            self.malformed += 1
            return
        if self._seen(envelope.id):
            return
        await self.apply(envelope.aggregate_id, payload)

    def _seen(self, envelope_id: str) -> bool:
        if envelope_id in self._ids:
            return True
        self._ids[envelope_id] = None
        if len(self._ids) > KEPT_IDS:
            self._ids.popitem(last=False)
        return False

    async def apply(self, task_id: UUID, payload: ev.EventData) -> None:
        match payload:
            case ev.TaskSubmitted(model=model):
                self._remember(task_id, None, model)
            case ev.TaskAssigned(agent_name=agent):
                self._remember(task_id, agent, self._tasks.get(task_id, (None, None))[1])
            case ev.TaskCompleted(usage=usage):
                agent, model = await self._labels(task_id)
                self.duration.labels(agent, model).observe(usage.duration_s)
                if usage.time_to_first_token_s > 0:
                    self.ttft.labels(agent, model).observe(usage.time_to_first_token_s)
                if usage.tokens_in:
                    self.tokens_in.labels(agent, model).inc(usage.tokens_in)
                if usage.tokens_out:
                    self.tokens_out.labels(agent, model).inc(usage.tokens_out)
                self.finished.labels(agent, "completed").inc()
                self.window.completed(agent, usage.duration_s)
                self._tasks.pop(task_id, None)
            case ev.TaskAttemptFailed(agent_name=agent_name):
                agent = agent_name or (await self._labels(task_id))[0]
                self.retries.labels(agent).inc()
                if not payload.rejected_for_agent:
                    self.window.failed(agent)
            case ev.TaskFailed() | ev.TaskTimedOut() | ev.TaskCancelled():
                agent, _ = await self._labels(
                    task_id, ask=not isinstance(payload, ev.TaskCancelled)
                )
                status = {
                    ev.TaskFailed: "failed",
                    ev.TaskTimedOut: "timed_out",
                    ev.TaskCancelled: "cancelled",
                }[type(payload)]
                self.finished.labels(agent, status).inc()
                if isinstance(payload, ev.TaskFailed | ev.TaskTimedOut):
                    self.window.failed(agent)
                self._tasks.pop(task_id, None)

    def _remember(self, task_id: UUID, agent: str | None, model: str | None) -> None:
        self._tasks[task_id] = (agent, model)
        self._tasks.move_to_end(task_id)
        if len(self._tasks) > KEPT_TASKS:
            self._tasks.popitem(last=False)

    async def _labels(self, task_id: UUID, ask: bool = True) -> tuple[str, str]:
        agent, model = self._tasks.get(task_id, (None, None))
        if agent is None and ask and self.resolve is not None:
            agent, model = await self.resolve(task_id)
        agent = agent or ""  # cancelled while queued, or not known any more
        model = model or self.agent_model(agent) or ""
        return agent, model
