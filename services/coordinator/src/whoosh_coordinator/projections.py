"""Read models folded from events: tasks by id and status, agents with their load.

The same fold serves the live coordinator (following the notification log) and
`replay` (from position zero), which is what lets a test prove they agree.
Pure: no I/O, events in, views out.

Finished tasks do not stay for ever: past `finished_kept` of them, the oldest finished
task's view leaves the projection (its count stays in the stats), so the coordinator's
memory follows the work in hand, not the work ever done. Their history stays in the
store, and a query for one is answered from there (queries.py). Eviction is part of the
fold, in notification order, so a replay with the same bound equals the live projection.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter, deque
from collections.abc import Collection, Iterator
from datetime import datetime
from uuid import UUID

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.inventory import model_key
from whoosh_shared.contract.queries import AgentView, FleetStats, TaskView

from whoosh_coordinator.alerts.projection import AlertProjection
from whoosh_coordinator.budgets.projection import BudgetProjection
from whoosh_coordinator.keys.registry import ApiKeyRegistry
from whoosh_coordinator.need_classes import NeedClass, need_class
from whoosh_coordinator.scheduling import warmth
from whoosh_coordinator.scheduling.estimates import observe
from whoosh_coordinator.scheduling.weights import WeightedRotation
from whoosh_coordinator.threads.projection import ThreadProjection
from whoosh_coordinator.usage_projection import UsageProjection
from whoosh_coordinator.workflows.projection import WorkflowProjection

FINISHED_KEPT = 2_000
"""Finished task views kept in memory: enough for a dashboard's recent list, small next
to the coordinator's baseline (measured by benchmarks/bench_scaling.py)."""


class FleetProjection:
    def __init__(self, finished_kept: int = FINISHED_KEPT) -> None:
        self.finished_kept = finished_kept
        self._finished: deque[UUID] = deque()
        self._evicted: Counter[TaskStatus] = Counter()
        self.tasks: dict[UUID, TaskView] = {}
        self.agents: dict[UUID, AgentView] = {}
        self._agent_ids: dict[str, UUID] = {}
        self._by_status: dict[TaskStatus, set[UUID]] = {s: set() for s in TaskStatus}
        self._queue: dict[int, list[tuple[int, UUID]]] = {}
        """Queued tasks per priority, sorted by submission sequence: the scheduling order
        kept as tasks come and go, so a pass reads the queue's head instead of sorting
        all of it (100k queued: a sort per pass cost more than a second here)."""
        self._lines: dict[NeedClass, dict[int, list[tuple[int, UUID]]]] = {}
        """The same queue split by need class (need_classes.py), so a pass can read only
        the classes some free agent could take, and skip the rest without a look."""
        self._class_of: dict[UUID, NeedClass] = {}
        self._queued_by: Counter[str] = Counter()
        self.api_keys = ApiKeyRegistry()
        self._unfinished: dict[str, int] = {}
        self.alerts = AlertProjection()
        self.workflows = WorkflowProjection()
        self.threads = ThreadProjection()
        self.budgets = BudgetProjection()
        self.usage = UsageProjection()
        self.rotation = WeightedRotation()
        """Traffic weights' round-robin credits, folded from TaskAssigned (weights.py)."""
        self._slot_models: dict[tuple[UUID, UUID], str] = {}
        """(agent, task) -> the model key its slot keeps loaded (scheduling/warmth.py)."""
        self.position = 0
        self.event_count = 0

    # -- folding ----------------------------------------------------------------------

    def apply(self, envelope: EventEnvelope) -> None:
        if envelope.notification_id <= self.position:
            return  # already folded: following and catching up may overlap
        self.position = envelope.notification_id
        self.event_count += 1
        payload = envelope.payload()
        if envelope.aggregate_type == "agent":
            self._apply_agent(envelope, payload)
        elif envelope.aggregate_type == "apikey":
            self.api_keys.apply(envelope, payload)
        elif envelope.aggregate_type == "alert":
            self.alerts.apply(envelope, payload)
        elif envelope.aggregate_type in ("workflow", "execution"):
            self.workflows.apply(envelope, payload)
        elif envelope.aggregate_type == "thread":
            self.threads.apply(envelope, payload)
        elif envelope.aggregate_type == "budget":
            self.budgets.apply(envelope, payload)
        else:
            self._apply_task(envelope, payload)
            self.usage.apply(envelope, payload)

    def _apply_agent(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        if isinstance(payload, ev.AgentRegistered | ev.AgentReregistered):
            self._forget_slots(envelope.aggregate_id)
            self.agents[envelope.aggregate_id] = AgentView(
                id=envelope.aggregate_id, spec=payload.spec, enabled=payload.spec.enabled
            )
            self._agent_ids[payload.spec.name] = envelope.aggregate_id
        if isinstance(payload, ev.AgentRemoved):
            removed = self.agents.pop(envelope.aggregate_id, None)
            self.rotation.forget(envelope.aggregate_id)
            self._forget_slots(envelope.aggregate_id)
            if removed is not None:
                self._agent_ids.pop(removed.spec.name, None)
            return
        view = self.agents.get(envelope.aggregate_id)
        if view is None:
            return  # a removed agent's late event: nothing to show
        view.version = envelope.version
        match payload:
            case ev.AgentUpdated(changes=changes):
                view.spec = AgentSpec.model_validate({**view.spec.model_dump(), **changes})
            case ev.AgentWeightChanged(weight=weight):
                view.spec = view.spec.model_copy(update={"weight": weight})
            case ev.AgentEnabled():
                view.enabled = True
            case ev.AgentDisabled():
                view.enabled = False
            case ev.AgentInventoryReported(inventory=inventory, still_missing=still):
                view.inventory, view.missing_models = inventory, list(still)
                warmth.probed(view, inventory, envelope.timestamp, payload.seen_version)
            case ev.AgentModelMissing(model=model):
                view.missing_models.append(model)
            case ev.AgentHealthChanged(healthy=healthy, reason=reason):
                view.healthy, view.health_reason = healthy, None if healthy else reason
            case ev.AgentSlotTaken(task_id=task_id):
                view.in_flight.append(task_id)
                self._take_model(view, task_id)
            case ev.AgentSlotReleased(task_id=task_id):
                if task_id in view.in_flight:
                    view.in_flight.remove(task_id)
                    key = self._slot_models.pop((view.id, task_id), None)
                    if key is not None:
                        warmth.slot_released(view, key)

    def _take_model(self, agent: AgentView, task_id: UUID) -> None:
        """The task's model stays loaded on the agent's server while its slot is held."""
        task = self.tasks.get(task_id)
        model = (task.model if task else None) or agent.spec.model
        if agent.spec.type is AgentType.CLI or model is None:
            return
        key = self._slot_models[(agent.id, task_id)] = model_key(model)
        warmth.slot_taken(agent, key)

    def _forget_slots(self, agent_id: UUID) -> None:
        for slot in [slot for slot in self._slot_models if slot[0] == agent_id]:
            del self._slot_models[slot]

    def _apply_task(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        if isinstance(payload, ev.TaskSubmitted):
            submitted = self.tasks[envelope.aggregate_id] = _new_task_view(envelope, payload)
            self._by_status[submitted.status].add(envelope.aggregate_id)
            if submitted.status is TaskStatus.QUEUED:  # not one waiting for dependencies
                self._enqueue(submitted)
            self._unfinished[payload.actor] = self._unfinished.get(payload.actor, 0) + 1
        view = self.tasks.get(envelope.aggregate_id)
        if view is None:
            return  # a late report on a finished task whose view was evicted: in the store
        before = view.status
        self._fold_task(view, envelope, payload)
        if view.status.terminal and not before.terminal:
            self._unfinished[view.submitted_by] -= 1
        view.version = envelope.version
        if view.status is not before:
            self._by_status[before].discard(view.id)
            self._by_status[view.status].add(view.id)
            self._requeue(view, before)
            if view.status.terminal:
                self._finished.append(view.id)
                self._evict_finished()

    def _requeue(self, view: TaskView, before: TaskStatus) -> None:
        """Keep the scheduling order as a task leaves the queue or comes back to it (a
        retry keeps its original place: its sequence is its submission's)."""
        if before is TaskStatus.QUEUED:
            self._dequeue(view)
        if view.status is TaskStatus.QUEUED:
            self._enqueue(view)

    def _enqueue(self, view: TaskView) -> None:
        place, klass = _place(view), need_class(view)
        bisect.insort(self._queue.setdefault(view.priority, []), place)
        bisect.insort(self._lines.setdefault(klass, {}).setdefault(view.priority, []), place)
        self._class_of[view.id] = klass
        self._queued_by[view.submitted_by] += 1

    def _dequeue(self, view: TaskView) -> None:
        place = _place(view)
        if _remove(self._queue[view.priority], place):
            self._queued_by[view.submitted_by] -= 1
            if not self._queued_by[view.submitted_by]:
                del self._queued_by[view.submitted_by]
        klass = self._class_of.pop(view.id, None)
        lines = self._lines.get(klass) if klass is not None else None
        if lines is None:
            return
        line = lines.get(view.priority)
        if line is not None and _remove(line, place) and not line:
            del lines[view.priority]
            if not lines:
                del self._lines[klass]  # type: ignore[arg-type]

    def _evict_finished(self) -> None:
        """Drop the oldest finished views past the bound; they are counted, not forgotten."""
        while len(self._finished) > self.finished_kept:
            view = self.tasks.pop(self._finished.popleft())
            self._by_status[view.status].discard(view.id)
            self._evicted[view.status] += 1

    def _fold_task(self, view: TaskView, envelope: EventEnvelope, payload: ev.EventData) -> None:
        at = envelope.timestamp
        match payload:
            case ev.TaskAssigned(agent_name=agent, attempt=attempt):
                view.status, view.agent, view.attempt = TaskStatus.ASSIGNED, agent, attempt
                view.assigned_at, view.not_before = at, None
                if payload.weighted_among:
                    self.rotation.fold(payload.weighted_among, payload.agent_id)
            case ev.TaskStarted(executor_id=executor_id):
                view.status, view.executor_id = TaskStatus.RUNNING, executor_id
                view.started_at = view.started_at or at
            case ev.TaskProgressed(message=message):
                view.last_progress = message
            case ev.TaskCompleted():
                self._finish(view, TaskStatus.COMPLETED, at, payload)
                self._count(view, "completed")
                self._measure(view, payload, envelope)
            case ev.TaskAttemptFailed():
                if view.agent and view.agent not in view.tried_agents:
                    view.tried_agents.append(view.agent)
                self._count(view, "failed")
                view.status, view.agent, view.executor_id = TaskStatus.QUEUED, None, None
                view.reason, view.exit_code = payload.reason, payload.exit_code
                view.output, view.not_before = payload.output, payload.not_before
                view.output_ref, view.stderr = payload.output_ref, payload.stderr
                view.assigned_at = view.started_at = None
            case ev.TaskFailed():
                self._count(view, "failed")
                self._finish(view, TaskStatus.FAILED, at, payload)
            case ev.TaskCancelled(reason=reason):
                view.status, view.reason, view.finished_at = TaskStatus.CANCELLED, reason, at
            case ev.TaskTimedOut(reason=reason):
                view.status, view.reason, view.finished_at = TaskStatus.TIMED_OUT, reason, at
            case ev.TaskOutputKept(output=output, usage=usage, stderr=stderr):
                view.output, view.usage, view.stderr = output, usage, stderr
            case ev.TaskReleased():
                view.status = TaskStatus.QUEUED
            case ev.TaskSkipped(reason=reason):
                view.status, view.reason, view.finished_at = TaskStatus.SKIPPED, reason, at

    @staticmethod
    def _finish(
        view: TaskView,
        status: TaskStatus,
        at: datetime,
        payload: ev.TaskCompleted | ev.TaskFailed,
    ) -> None:
        view.status, view.finished_at = status, at
        view.output, view.exit_code, view.usage = payload.output, payload.exit_code, payload.usage
        view.output_ref, view.stderr = payload.output_ref, payload.stderr
        if isinstance(payload, ev.TaskFailed):
            view.reason = payload.reason

    def _count(self, view: TaskView, outcome: str) -> None:
        agent = self.agent_by_name(view.agent) if view.agent else None
        if agent is not None:
            setattr(agent, outcome, getattr(agent, outcome) + 1)

    def _measure(self, view: TaskView, payload: ev.TaskCompleted, envelope: EventEnvelope) -> None:
        """Speed per agent and model, from what the completed task's usage measured, and
        the model's warmth there from the completion on."""
        agent = self.agent_by_name(view.agent) if view.agent else None
        model = view.model or (agent.spec.model if agent else None)
        if agent is None or model is None:
            return
        key = model_key(model)
        if agent.spec.type is not AgentType.CLI:  # the server keeps it for its keep-alive
            keep_alive = view.llm.keep_alive if view.llm else None
            warmth.used(agent, key, envelope.timestamp, keep_alive)
        streams = agent.load + (view.id not in agent.in_flight)  # its own slot included
        stats = observe(agent.speeds.get(key), payload.usage, streams)
        if stats is not None:
            agent.speeds[key] = stats

    # -- reading ----------------------------------------------------------------------

    def agent_by_name(self, name: str) -> AgentView | None:
        agent_id = self._agent_ids.get(name)
        return self.agents[agent_id] if agent_id else None

    def with_status(self, *statuses: TaskStatus) -> list[TaskView]:
        """Indexed by status, so a pass over waiting work never scans finished tasks."""
        return [self.tasks[i] for status in statuses for i in self._by_status[status]]

    def count(self, status: TaskStatus) -> int:
        return len(self._by_status[status])

    def queued(self, classes: Collection[NeedClass] | None = None) -> list[TaskView]:
        """Queued tasks in scheduling order: higher priority first, then submission order;
        only those of `classes` (need_classes.py) when given."""
        return list(self.queued_in_order(classes))

    def queued_in_order(self, classes: Collection[NeedClass] | None = None) -> Iterator[TaskView]:
        """The same order, lazily: a pass that fills every free slot stops reading early."""
        if classes is not None:
            yield from self._queued_of(classes)
            return
        for priority in sorted(self._queue, reverse=True):
            for _, task_id in list(self._queue[priority]):
                yield self.tasks[task_id]

    def _queued_of(self, classes: Collection[NeedClass]) -> Iterator[TaskView]:
        """The queued tasks of some classes, merged back into scheduling order; the cost
        is that of those classes' tasks only."""
        lines = [self._lines[klass] for klass in classes if klass in self._lines]
        for priority in sorted({p for by_priority in lines for p in by_priority}, reverse=True):
            runs = [list(by_priority[priority]) for by_priority in lines if priority in by_priority]
            for _, task_id in heapq.merge(*runs):
                yield self.tasks[task_id]

    def queued_classes(self) -> list[NeedClass]:
        """The need classes that have queued tasks now."""
        return list(self._lines)

    def queued_actors(self) -> int:
        """How many submitters have queued tasks now."""
        return len(self._queued_by)

    def queued_by(self, actor: str) -> int:
        """How many of `actor`'s tasks are queued now (all classes)."""
        return self._queued_by.get(actor, 0)

    def active(self) -> list[TaskView]:
        return self.with_status(TaskStatus.ASSIGNED, TaskStatus.RUNNING)

    def unfinished_by(self, actor: str) -> int:
        """How many tasks `actor` submitted that have not ended (its concurrent-task count);
        kept as a count per actor, since every submit through the gateway asks it."""
        return self._unfinished.get(actor, 0)

    def stats(self) -> FleetStats:
        return FleetStats(
            tasks_by_status={
                s.value: len(self._by_status[s]) + self._evicted[s] for s in TaskStatus
            },
            agents=len(self.agents),
            agents_enabled=sum(1 for a in self.agents.values() if a.enabled),
            in_flight=sum(a.load for a in self.agents.values()),
            position=self.position,
        )


def _place(view: TaskView) -> tuple[int, UUID]:
    return (view.sequence, view.id)


def _remove(line: list[tuple[int, UUID]], place: tuple[int, UUID]) -> bool:
    """Take `place` out of a sorted line; whether it was there."""
    at = bisect.bisect_left(line, place)
    if at < len(line) and line[at] == place:
        del line[at]
        return True
    return False


def _new_task_view(envelope: EventEnvelope, payload: ev.TaskSubmitted) -> TaskView:
    return TaskView(
        id=envelope.aggregate_id,
        status=TaskStatus.WAITING if payload.depends_on else TaskStatus.QUEUED,
        prompt=payload.prompt,
        prompt_ref=payload.prompt_ref,
        priority=payload.priority,
        capabilities=payload.capabilities,
        agent_type=payload.agent_type.value if payload.agent_type else None,
        model=payload.model,
        pinned_agent=payload.agent,
        timeout_s=payload.timeout_s,
        llm=payload.llm,
        max_attempts=payload.retry.max_attempts,
        workspace_disposable=payload.retry.workspace_disposable,
        submitted_at=envelope.timestamp,
        sequence=envelope.notification_id,
        submitted_by=payload.actor,
        origin=payload.origin,
        depends_on=payload.depends_on,
    )
