"""Workflow and execution commands, the task-end listener that advances executions, and
the timer sweep.

Everything an execution decides is saved with what caused it in one transaction: a run
with its first tasks, a finished step's task with the next steps' tasks, a cancel with
the cancellation of every running step's task. After a crash the store holds either
all of a decision or none of it, so no step is lost or run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.commands import CommandReply, RejectCode
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.workflow_templates import template_text

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.scheduling.admission import admit
from whoosh_coordinator.tasks.domain import Task
from whoosh_coordinator.threads.commands import create_thread, stop_leftovers
from whoosh_coordinator.threads.domain import Thread
from whoosh_coordinator.workflows import definition as d
from whoosh_coordinator.workflows import n8n
from whoosh_coordinator.workflows.dependencies import Dependencies
from whoosh_coordinator.workflows.domain import Execution, Launch, Workflow, workflow_id

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler

log = logging.getLogger(__name__)
MAX_DRIVE_ROUNDS = 1000
END_EVENTS = {
    "Completed": "completed",
    "Failed": "failed",
    "Cancelled": "cancelled",
    "TimedOut": "timed_out",
}


def describe_problems(what: str, problems: list[str]) -> str:
    head = f"{what} refused ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"
    return "\n".join([head, *(f"- {p}" for p in problems)])


class WorkflowCommands:
    def __init__(self, handler: CommandHandler) -> None:
        self.handler = handler
        self.aggregates = handler.aggregates
        self.dependencies = Dependencies(handler)

    def dispatch(self) -> dict[type[c.Command], Callable[[Any], CommandReply]]:
        return {
            w.CreateWorkflow: self.create_workflow,
            w.RunWorkflow: self.run_workflow,
            w.CancelExecution: self.cancel_execution,
            w.RetryExecution: self.retry_execution,
            w.DecideApproval: self.decide_approval,
        }

    # -- definitions --------------------------------------------------------------------

    def create_workflow(self, cmd: w.CreateWorkflow) -> CommandReply:
        definition, origin, text = self._translate(cmd)
        data = definition.model_dump(mode="json")
        try:
            workflow = self.aggregates.get(workflow_id(definition.name))
        except AggregateNotFoundError:
            workflow = None
        if workflow is None:
            workflow = Workflow(
                name=definition.name, definition=data, source=text, origin=origin, actor=cmd.actor
            )
        elif not workflow.add_version(data, text, origin, cmd.actor):
            return CommandReply.accept(
                workflow_id=str(workflow.id), name=workflow.name, version=str(workflow.latest)
            )
        self.handler.save(workflow)
        return CommandReply.accept(
            workflow_id=str(workflow.id), name=workflow.name, version=str(workflow.latest)
        )

    def _translate(self, cmd: w.CreateWorkflow) -> tuple[d.Definition, str, str]:
        if cmd.template is not None:
            text = template_text(cmd.template)
            if text is None:
                raise Rejected(RejectCode.NOT_FOUND, f"unknown template '{cmd.template}'")
            origin, source = f"template:{cmd.template}", f"template {cmd.template}"
        else:
            text, origin, source = cmd.source or "", "yaml", cmd.filename
        try:
            if cmd.format == "n8n" or (cmd.format == "auto" and n8n.looks_like_n8n(text)):
                data = n8n.translate(text, source, cmd.name)
                return d.load_data(data, source), "n8n", text
            if cmd.format == "n8n":
                raise d.DefinitionError([f"{source}: not an n8n export"])
            return d.load_text(text, source, name=cmd.name), origin, text
        except d.DefinitionError as exc:
            raise Rejected(RejectCode.INVALID, describe_problems(source, exc.problems)) from None

    # -- executions ---------------------------------------------------------------------

    def run_workflow(self, cmd: w.RunWorkflow) -> CommandReply:
        try:
            workflow = self.aggregates.get(workflow_id(cmd.workflow))
        except AggregateNotFoundError:
            raise Rejected(RejectCode.NOT_FOUND, f"unknown workflow '{cmd.workflow}'") from None
        data = workflow.at(cmd.version)
        spec = d.Definition.model_validate(data)
        try:
            inputs = d.bind_inputs(spec, cmd.inputs)
        except d.DefinitionError as exc:
            raise Rejected(
                RejectCode.INVALID, describe_problems(f"run of '{cmd.workflow}'", exc.problems)
            ) from None
        now = self.handler.clock()
        deadline = spec.settings.deadline
        execution = Execution(
            workflow=workflow.name,
            version=cmd.version or workflow.latest,
            definition=data,
            inputs=inputs,
            actor=cmd.actor,
            deadline_at=now + timedelta(seconds=deadline) if deadline else None,
        )
        self._advance_and_save(execution, now)
        return CommandReply.accept(execution_id=str(execution.id))

    def cancel_execution(self, cmd: w.CancelExecution) -> CommandReply:
        execution = self._load_execution(cmd.execution_id)
        execution.cancel(cmd.reason, cmd.actor)
        self._advance_and_save(execution, self.handler.clock())
        return CommandReply.accept(execution_id=str(execution.id), status=execution.status)

    def retry_execution(self, cmd: w.RetryExecution) -> CommandReply:
        execution = self._load_execution(cmd.execution_id)
        steps = execution.retry(cmd.from_step, cmd.actor, self.handler.clock())
        self._advance_and_save(execution, self.handler.clock())
        return CommandReply.accept(execution_id=str(execution.id), steps=",".join(steps))

    def decide_approval(self, cmd: w.DecideApproval) -> CommandReply:
        execution = self._load_execution(cmd.execution_id)
        execution.decide(cmd.step, cmd.approve, cmd.actor, cmd.comment)
        self._advance_and_save(execution, self.handler.clock())
        return CommandReply.accept(execution_id=str(execution.id), status=execution.status)

    def _load_execution(self, execution_id: UUID) -> Execution:
        try:
            found = self.aggregates.get(execution_id)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, Execution):
            raise Rejected(RejectCode.NOT_FOUND, f"unknown execution {execution_id}")
        return found

    def _advance_and_save(self, execution: Execution, now: datetime) -> None:
        self.handler.save(execution, *self.advance(execution, now))

    def advance(self, execution: Execution, now: datetime, ended: UUID | None = None) -> list:
        """Launch what is ready as new Tasks and cancel the tasks of stopped steps; returns
        the aggregates to save with the execution."""
        tasks = self._drive(execution, now)
        stopped = self._cancel(execution.take_cancellations(), tasks, ended)
        return [*tasks, *stopped]

    def _drive(self, execution: Execution, now: datetime) -> list[Aggregate]:
        made: list[Aggregate] = []
        for _ in range(MAX_DRIVE_ROUNDS):
            launches = execution.advance(now)
            if not launches:
                break
            for launch in launches:
                if launch.review is not None:
                    made += self._review(execution, launch)
                elif problem := self._admission_problem(launch):
                    execution.fail_step(launch.step, problem)
                else:
                    task = self._task(execution, launch)
                    execution.scheduled(launch.step, task.id)
                    made.append(task)
                if execution.finished:
                    break
        return made

    def _review(self, execution: Execution, launch: Launch) -> list[Aggregate]:
        """A review step as a thread (its first round's tasks with it), or the step fails
        saying why none could start (no such agent, no agent at the address, ...)."""
        origin = {"kind": "execution", "id": str(execution.id), "step": launch.step}
        try:
            cmd = t.StartThread(**(launch.review or {}), actor=f"execution {execution.id}")
            thread, made = create_thread(self.handler, cmd, origin)
        except ValidationError as exc:
            from whoosh_coordinator.commands import describe_validation_error

            execution.fail_step(launch.step, f"cannot start it: {describe_validation_error(exc)}")
            return []
        except Rejected as rejected:
            execution.fail_step(launch.step, f"cannot start it: {rejected.reason}")
            return []
        execution.scheduled(launch.step, thread.id)
        return [thread, *made]

    def _admission_problem(self, launch: Launch) -> str | None:
        """Why no agent could ever run this step (refused as a submit would be), or None."""
        try:
            cmd = c.SubmitTask(
                prompt=launch.prompt,
                capabilities=launch.capabilities,
                agent_type=AgentType(launch.agent_type) if launch.agent_type else None,
                model=launch.model,
                agent=launch.agent,
                timeout_s=launch.timeout_s,
                retry=c.RetryPolicy(**launch.retry),
                llm=c.LlmOptions(**launch.llm) if launch.llm else None,
            )
            admit(cmd, self.handler.projection)
        except ValidationError as exc:
            from whoosh_coordinator.commands import describe_validation_error

            return f"cannot make a task of it: {describe_validation_error(exc)}"
        except Rejected as rejected:
            return f"no agent can run it: {rejected.reason}"
        return None

    @staticmethod
    def _task(execution: Execution, launch: Launch) -> Task:
        return Task(
            prompt=launch.prompt,
            priority=c.DEFAULT_PRIORITY,
            capabilities=list(launch.capabilities),
            agent_type=launch.agent_type,
            model=launch.model,
            agent=launch.agent,
            timeout_s=launch.timeout_s,
            retry=launch.retry,
            actor=f"execution {execution.id}",
            llm=c.LlmOptions(**launch.llm).model_dump(mode="json") if launch.llm else None,
            origin={"kind": "execution", "id": str(execution.id), "step": launch.step},
        )

    def _cancel(self, task_ids: list[UUID], new: list[Aggregate], ended: UUID | None) -> list:
        """Cancel the tasks of steps the execution stopped, releasing their agents' slots;
        close the threads of stopped review steps (cancelling the answers still out)."""
        fresh = {a.id: a for a in new}
        changed: dict[UUID, Aggregate] = {}
        for task_id in task_ids:
            if task_id == ended:
                continue
            found = fresh.get(task_id) or self._get(task_id)
            if isinstance(found, Thread):
                changed.update((a.id, a) for a in self._close_review(found, new))
                continue
            task = found
            if not isinstance(task, Task) or task.terminal:
                continue
            held = task.agent_id
            task.cancel(reason="its workflow execution stopped", actor="system")
            changed[task.id] = task
            if held is not None and task.id not in fresh:
                agent: Agent = self.handler.load_agent_by_id(held)
                if agent.holds(task.id):
                    agent.release_slot(task.id)
                    changed[agent.id] = agent
        return list(changed.values())

    def _get(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self.aggregates.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _close_review(self, thread: Thread, new: list[Aggregate]) -> list[Aggregate]:
        if not thread.open:
            return []
        thread.close("cancelled", "its workflow execution stopped", "system")
        return [thread, *stop_leftovers(self.handler, thread, new)]

    # -- the end listeners --------------------------------------------------------------

    def on_thread_end(self, thread: Thread) -> list[Aggregate]:
        """A review step's thread closed: approve succeeds the step, anything else fails
        it with the outcome; the execution advances in the same save."""
        origin = thread.origin or {}
        if origin.get("kind") != "execution":
            return []
        try:
            execution = self._load_execution(UUID(origin["id"]))
        except (Rejected, ValueError, KeyError):
            log.warning("thread %s names an unknown execution %s", thread.id, origin.get("id"))
            return []
        decision = thread.decision
        if decision == "approve":
            status, error = "completed", None
        else:
            status = "failed"
            error = f"review {thread.outcome}: {decision or 'no decision'} (thread {thread.id})"
        if not execution.task_ended(thread.id, status, decision or "", error, None):
            return []
        return [execution, *self.advance(execution, self.handler.clock(), ended=thread.id)]

    def on_task_end(self, task: Task) -> list[Aggregate]:
        """A step's task ended: record it on its execution and advance, in the same save."""
        origin = task.origin or {}
        if origin.get("kind") != "execution":
            return []
        try:
            execution = self._load_execution(UUID(origin["id"]))
        except (Rejected, ValueError, KeyError):
            log.warning("task %s names an unknown execution %s", task.id, origin.get("id"))
            return []
        status, output, error, exit_code, stderr = outcome_of(task)
        if not execution.task_ended(task.id, status, output, error, exit_code, stderr=stderr):
            return []
        return [execution, *self.advance(execution, self.handler.clock(), ended=task.id)]

    # -- timers -------------------------------------------------------------------------

    def wake_due(self, due: list[UUID]) -> int:
        """Waits that end, approvals that time out, deadlines that pass; returns how many
        executions changed. Driven by the sweep from the projection's wake times, so
        timers survive restarts."""
        changed = 0
        for execution_id in due:
            self.aggregates.begin()
            try:
                execution = self._load_execution(execution_id)
                if execution.wake(self.handler.clock()):
                    self._advance_and_save(execution, self.handler.clock())
                    changed += 1
            except (Rejected, IntegrityError) as exc:
                self.aggregates.forget_touched()
                log.debug("timers of execution %s skipped: %s", execution_id, exc)
        return changed


def outcome_of(task: Task) -> tuple[str, str, str | None, int | None, str]:
    """(status, output, error, exit code, stderr tail) of a task that just ended, from its
    unsaved events."""
    status, output, error, exit_code, stderr = task.status, "", None, None, ""
    for pending in reversed(task.pending_events):
        name = type(pending).__name__
        if name == "OutputKept" and not output:
            output, stderr = pending.output, getattr(pending, "stderr", "")
        if name in END_EVENTS:
            output = getattr(pending, "output", "") or output
            stderr = getattr(pending, "stderr", "") or stderr
            error = getattr(pending, "reason", None)
            exit_code = getattr(pending, "exit_code", None)
            if name == "Completed" and exit_code not in (None, 0):
                error = f"exit code {exit_code}"
            break
    return status, output, error, exit_code, stderr
