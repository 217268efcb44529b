"""Read models of workflows and executions, folded from their events (live and replay).

Per-step agent, attempts, times, tokens and cost come from the step's task view when an
execution is read, so they are never stored twice. Pure: events in, views out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import TaskView
from whoosh_shared.contract.workflows import ExecutionView, StepView, WorkflowSummary, WorkflowView

from whoosh_coordinator.workflows.definition import THREAD_STEPS, Definition, to_yaml


class WorkflowProjection:
    def __init__(self) -> None:
        self.workflows: dict[str, WorkflowSummary] = {}
        self._versions: dict[str, list[tuple[dict[str, Any], str]]] = {}
        self._names: dict[UUID, str] = {}
        self.executions: dict[UUID, ExecutionView] = {}
        self._types: dict[UUID, dict[str, str]] = {}
        self._wakes: dict[UUID, datetime] = {}

    # -- folding ------------------------------------------------------------------------

    def apply(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        if envelope.aggregate_type == "workflow":
            self._apply_workflow(envelope, payload)
        else:
            self._apply_execution(envelope, payload)

    def _apply_workflow(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        at = envelope.timestamp
        if isinstance(payload, ev.WorkflowDefined):
            self._names[envelope.aggregate_id] = payload.name
            self._versions[payload.name] = [(payload.definition, payload.source)]
            self.workflows[payload.name] = WorkflowSummary(
                id=envelope.aggregate_id,
                name=payload.name,
                description=payload.definition.get("description", ""),
                version=1,
                steps=len(payload.definition.get("steps", {})),
                origin=payload.origin,
                created_at=at,
                updated_at=at,
            )
        elif isinstance(payload, ev.WorkflowVersionAdded):
            name = self._names[envelope.aggregate_id]
            self._versions[name].append((payload.definition, payload.source))
            summary = self.workflows[name]
            summary.version = len(self._versions[name])
            summary.description = payload.definition.get("description", "")
            summary.steps = len(payload.definition.get("steps", {}))
            summary.origin, summary.updated_at = payload.origin, at

    def _apply_execution(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        at = envelope.timestamp
        if isinstance(payload, ev.ExecutionStarted):
            steps = payload.definition.get("steps", {})
            self._types[envelope.aggregate_id] = {sid: s["type"] for sid, s in steps.items()}
            self.executions[envelope.aggregate_id] = ExecutionView(
                id=envelope.aggregate_id,
                workflow=payload.workflow,
                version=payload.version,
                status="running",
                inputs=payload.inputs,
                actor=payload.actor,
                started_at=at,
                deadline_at=payload.deadline_at,
                steps=[
                    StepView(id=sid, type=s["type"], status="pending") for sid, s in steps.items()
                ],
                sequence=envelope.notification_id,
            )
            self._rewake(envelope.aggregate_id)
            return
        view = self.executions.get(envelope.aggregate_id)
        if view is None:
            return
        match payload:
            case ev.ExecutionStepScheduled(step=sid, task_id=task_id, round=round_):
                step = _step(view, sid)
                step.status, step.round, step.started_at = "running", round_, at
                if step.type in THREAD_STEPS:
                    step.thread_id = task_id  # a review step runs as a thread
                else:
                    step.task_id = task_id
            case ev.ExecutionStepWaiting(step=sid, kind=kind, wake_at=wake, message=message):
                step = _step(view, sid)
                step.status, step.waiting_for, step.wake_at = "waiting", kind, wake
                step.started_at, step.message = at, message or None
                step.round = view.round
            case ev.ExecutionStepEnded():
                step = _step(view, payload.step)
                step.status, step.port = payload.status, payload.port
                step.output, step.error = payload.output, payload.error
                step.stderr = payload.stderr
                step.exit_code, step.finished_at = payload.exit_code, at
                step.waiting_for, step.wake_at = None, None
                if payload.actor != "system":
                    step.decided_by = payload.actor
                if step.started_at is not None:
                    step.duration_s = (at - step.started_at).total_seconds()
            case ev.ExecutionFinished(status=status, reason=reason):
                view.status, view.reason, view.finished_at = status, reason, at
            case ev.ExecutionRetried(round=round_, steps=steps, deadline_at=deadline):
                view.status, view.reason, view.finished_at = "running", None, None
                view.round, view.deadline_at = round_, deadline
                for sid in steps:
                    old = _step(view, sid)
                    index = view.steps.index(old)
                    view.steps[index] = StepView(id=sid, type=old.type, status="pending",
                                                 round=round_)  # fmt: skip
        self._rewake(envelope.aggregate_id)

    def _rewake(self, execution_id: UUID) -> None:
        view = self.executions[execution_id]
        times = [s.wake_at for s in view.steps if s.wake_at is not None]
        if view.status == "running" and view.deadline_at is not None:
            times.append(view.deadline_at)
        if view.status == "running" and times:
            self._wakes[execution_id] = min(times)
        else:
            self._wakes.pop(execution_id, None)

    # -- reading ------------------------------------------------------------------------

    def due(self, now: datetime) -> list[UUID]:
        """Executions with a timer (wait, approval timeout, deadline) that has come."""
        return [eid for eid, at in self._wakes.items() if at <= now]

    def workflow(self, name: str, version: int | None) -> WorkflowView | None:
        summary = self.workflows.get(name)
        if summary is None:
            return None
        versions = self._versions[name]
        shown = version or len(versions)
        if not 1 <= shown <= len(versions):
            return None
        definition, source = versions[shown - 1]
        return WorkflowView(
            **summary.model_dump(),
            shown_version=shown,
            definition=definition,
            source=source,
            yaml=to_yaml(Definition.model_validate(definition)),
        )

    def execution(self, execution_id: UUID, tasks: dict[UUID, TaskView]) -> ExecutionView | None:
        view = self.executions.get(execution_id)
        return None if view is None else with_tasks(view, tasks)

    def listed(
        self, tasks: dict[UUID, TaskView], workflow: str | None, status: str | None, limit: int
    ) -> list[ExecutionView]:
        chosen = []
        for view in sorted(self.executions.values(), key=lambda v: -v.sequence):
            if workflow and view.workflow != workflow:
                continue
            if status and view.status != status:
                continue
            chosen.append(with_tasks(view, tasks))
            if len(chosen) >= limit:
                break
        return chosen


def _step(view: ExecutionView, sid: str) -> StepView:
    for step in view.steps:
        if step.id == sid:
            return step
    raise KeyError(sid)


def with_tasks(view: ExecutionView, tasks: dict[UUID, TaskView]) -> ExecutionView:
    """A copy of the view with each step's agent, attempts and usage from its task."""
    copy = view.model_copy(deep=True)
    for step in copy.steps:
        task = tasks.get(step.task_id) if step.task_id else None
        if task is None:
            continue
        step.agent = task.agent or (task.tried_agents[-1] if task.tried_agents else None)
        step.attempts = task.attempt
        step.started_at = task.started_at or step.started_at
        step.tokens_in, step.tokens_out = task.usage.tokens_in, task.usage.tokens_out
        step.cost_usd = task.usage.cost_usd
        if step.finished_at is not None and step.started_at is not None:
            step.duration_s = (step.finished_at - step.started_at).total_seconds()
    return copy
