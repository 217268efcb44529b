"""Command handling: validate, load aggregates, let the domain decide, save.

Every command ends in exactly one CommandReply. A command either saves all its
events in one transaction or none: domain rules raise `Rejected` before any
event is triggered, and an optimistic-concurrency conflict (another coordinator
wrote first) is retried from fresh state, never half-applied.

This module holds the handler (dispatch, group commit, retries, loading and saving) and
the task commands; agent, API key and alert commands live beside it in
`agent_commands.py`, `api_key_commands.py` and `alert_commands.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from pydantic import ValidationError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.budgets import SetBudget
from whoosh_shared.contract.commands import CommandReply, RejectCode
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.limits import LimitSettings, preview
from whoosh_shared.contract.security_settings import SecuritySettings
from whoosh_shared.contract.workflows import WORKFLOW_COMMANDS

from whoosh_coordinator import idempotency
from whoosh_coordinator.agents import commands as agent_commands
from whoosh_coordinator.agents.domain import Agent, agent_id
from whoosh_coordinator.alerts import commands as alert_commands
from whoosh_coordinator.budgets import commands as budget_commands
from whoosh_coordinator.keys import commands as api_key_commands
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.scheduling.admission import admit
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import Needs, choose, eligible
from whoosh_coordinator.size_policy import check_prompt_size
from whoosh_coordinator.store import WhooshStore
from whoosh_coordinator.tasks.domain import Task, task_id_for
from whoosh_coordinator.threads import commands as thread_commands
from whoosh_coordinator.threads.domain import Thread
from whoosh_coordinator.working_set import StaleCopy, WorkingSet

log = logging.getLogger(__name__)
COLLAB_COMMANDS: tuple[type[c.Command], ...] = (
    t.StartThread,
    t.PostToThread,
    t.DecideThread,
    t.CloseThread,
    SetBudget,
)
COMMANDS_BY_SUBJECT: dict[str, type[c.Command]] = {
    cls.SUBJECT: cls for cls in (*c.COMMANDS, *WORKFLOW_COMMANDS, *COLLAB_COMMANDS)
}
TaskEndListener = Callable[[Task], Sequence[Aggregate]]
"""Called when a task reaches its end (completed, failed, cancelled, timed out); the
aggregates it returns (a workflow execution advanced, a thread's vote recorded, new tasks)
are saved in the same transaction as the task's last event."""
ThreadEndListener = Callable[[Thread], Sequence[Aggregate]]
"""Called when a thread that names an origin closes; likewise saved with its last event."""
CONFLICT_RETRIES = 8
PLACE_AT_ONCE_CONFLICTS = 2
"""After this many lost races, a submit no longer places its task itself (see
_place_at_once)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe_validation_error(exc: ValidationError) -> str:
    """One line a person can act on: 'priority: Input should be less than or equal to 10'."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


class CommandHandler:
    """Turns commands into stored events. `on_saved` runs after every successful save."""

    def __init__(
        self,
        store: WhooshStore,
        projection: FleetProjection,
        on_saved: Callable[[list[Recording[Any]]], None],
        clock: Callable[[], datetime] = utcnow,
        limits: LimitSettings | None = None,
        security: SecuritySettings | None = None,
    ) -> None:
        self.limits = limits or LimitSettings()
        self.store = store
        self.security = security or SecuritySettings()  # who may define command agents
        self.projection = projection
        self.on_saved = on_saved
        self.clock = clock
        self.aggregates = WorkingSet(store)
        self._unit: list[Aggregate] | None = None
        self._dispatch: dict[type[c.Command], Callable[[Any], CommandReply]] = {
            c.SubmitTask: self._submit_task,
            c.StartTask: self._start_task,
            c.ReportProgress: self._report_progress,
            c.CompleteTask: self._complete_task,
            c.FailTask: self._fail_task,
            c.CancelTask: self._cancel_task,
            **{
                command: partial(decide, self)
                for command, decide in (
                    (c.RegisterAgent, agent_commands.register_agent),
                    (c.UpdateAgent, agent_commands.update_agent),
                    (c.EnableAgent, agent_commands.enable_agent),
                    (c.DisableAgent, agent_commands.disable_agent),
                    (c.RemoveAgent, agent_commands.remove_agent),
                    (c.ReportInventory, agent_commands.report_inventory),
                    (c.ReportAgentHealth, agent_commands.report_health),
                    (c.CreateApiKey, api_key_commands.create_api_key),
                    (c.RevokeApiKey, api_key_commands.revoke_api_key),
                    (c.RaiseAlert, alert_commands.raise_alert),
                    (c.ResolveAlert, alert_commands.resolve_alert),
                    (c.SetAgentWeight, agent_commands.set_agent_weight),
                    (t.StartThread, thread_commands.start_thread),
                    (t.PostToThread, thread_commands.post),
                    (t.DecideThread, thread_commands.decide_thread),
                    (t.CloseThread, thread_commands.close_thread),
                    (SetBudget, budget_commands.set_budget),
                )
            },
        }
        self._submitted_in_unit: dict[str, int] = {}
        self._conflicts = 0  # races the command being handled lost: see _place_at_once
        self.task_end_listeners: list[TaskEndListener] = [
            thread_commands.task_end_listener(self),
            budget_commands.charge_listener(self),
        ]
        self.prices: dict[str, dict[str, float]] = {}  # whoosh.yaml `prices:` (USD per Mtok)
        from whoosh_coordinator.workflows.commands import WorkflowCommands

        self.workflows = WorkflowCommands(self)
        self._dispatch.update(self.workflows.dispatch())
        self.task_end_listeners.append(self.workflows.on_task_end)
        self.task_end_listeners.append(self.workflows.dependencies.on_task_end)
        # told when a thread that something started ends (a workflow's review step)
        self.thread_end_listeners: list[ThreadEndListener] = [self.workflows.on_thread_end]
        self.default_escalation: list[dict[str, Any]] = []  # whoosh.yaml thread_escalation
        self.store_heard = 0  # the highest notification id other writers said they stored

    # -- entry points -----------------------------------------------------------------

    def parse(self, subject: str, body: bytes) -> c.Command | CommandReply:
        """The command a message carries, or the rejection that says why it is not one."""
        model = COMMANDS_BY_SUBJECT.get(subject)
        if model is None:
            return CommandReply.reject(RejectCode.INVALID, f"unknown command subject '{subject}'")
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            return CommandReply.reject(
                RejectCode.INVALID, f"invalid {model.__name__}: {describe_validation_error(exc)}"
            )

    def handle_raw(self, subject: str, body: bytes) -> CommandReply:
        parsed = self.parse(subject, body)
        return parsed if isinstance(parsed, CommandReply) else self.handle(parsed)

    def handle_batch(self, commands: list[c.Command]) -> list[CommandReply]:
        """Group commit: decide commands that arrived together, then save them in one
        transaction (one commit costs about as much as one event; several events in it
        barely more). Anything unusual -- a conflict, a rejection decided on remembered
        state, an error -- drops the whole group's decisions and handles each command
        alone, so the group changes speed, never outcomes."""
        if len(commands) == 1:
            return [self.handle(commands[0])]
        self._conflicts = 0
        self._unit = []
        self._submitted_in_unit = {}
        self.aggregates.begin()
        try:
            replies = [self._decide_in_unit(command) for command in commands]
            unit = list({id(a): a for a in self._unit}.values())
            self._unit = None
            self._submitted_in_unit = {}
            recordings = self.store.save(*unit) if unit else []
        except Exception:  # every failure has the same remedy: one command at a time
            self._unit = None
            self._submitted_in_unit = {}
            self.aggregates.forget_touched()
            return [self.handle(command) for command in commands]
        if unit:
            self.aggregates.keep(*unit)
            self.on_saved(recordings)
        return replies

    def _decide_in_unit(self, command: c.Command) -> CommandReply:
        try:
            return self._dispatch[type(command)](command)
        except Rejected as rejected:
            if self.aggregates.decided_from_memory:
                raise
            return CommandReply.reject(rejected.code, rejected.reason)

    def handle(self, command: c.Command) -> CommandReply:
        self._conflicts = 0
        for _ in range(CONFLICT_RETRIES):
            self.aggregates.begin()
            try:
                return self._dispatch[type(command)](command)
            except Rejected as rejected:
                if self.aggregates.decided_from_memory:  # confirm against the store first
                    self.aggregates.forget_touched()
                    continue
                return CommandReply.reject(rejected.code, rejected.reason)
            except IntegrityError:
                self.aggregates.forget_touched()  # someone else saved first: decide again
                self._conflicts += 1
                continue
            except Exception:
                self.aggregates.forget_touched()
                log.exception("command %s failed", type(command).__name__)
                return CommandReply.reject(
                    RejectCode.INTERNAL, f"internal error handling {type(command).__name__}"
                )
        return CommandReply.reject(
            RejectCode.CONFLICT, f"{type(command).__name__} kept conflicting with other writers"
        )

    # -- helpers ----------------------------------------------------------------------

    def save(self, *aggregates: Aggregate) -> None:
        if self._unit is not None:  # inside a group commit: saved with the group
            self._unit.extend(aggregates)
            return
        recordings = self.store.save(*aggregates)
        self.aggregates.keep(*aggregates)
        self.on_saved(recordings)

    def load_agent(self, name: str) -> Agent:
        try:
            agent = self.aggregates.get(agent_id(name))
        except AggregateNotFoundError:
            raise Rejected(RejectCode.NOT_FOUND, f"unknown agent '{name}'") from None
        if agent.removed:
            raise Rejected(RejectCode.NOT_FOUND, f"unknown agent '{name}' (it was removed)")
        return agent

    def load_agent_by_id(self, id_: UUID) -> Agent:
        return self.aggregates.get(id_)

    def load_task(self, task_id: UUID) -> Task:
        try:
            return self.aggregates.get(task_id)
        except AggregateNotFoundError:
            raise Rejected(RejectCode.NOT_FOUND, f"unknown task {task_id}") from None

    def settle(self, task: Task, held: UUID | None, agent: Agent | None = None) -> None:
        """Save a task, with the release of the agent slot it held if it no longer runs
        (`agent`: the held agent, when this decision has loaded it already). A task that
        ended takes what its `task_end_listeners` return into the same transaction."""
        followers = self._after_end(task)
        if held is None or task.active:
            self.save(task, *([agent] if agent else []), *followers)
            return
        agent = agent or self.load_agent_by_id(held)
        if not agent.holds(task.id) and self.aggregates.decided_from_memory:
            # Another coordinator may have given this slot since our copy was saved: the
            # release would record nothing on the copy and the slot would leak.
            raise StaleCopy(f"agent {agent.name}: remembered copy lacks task {task.id}")
        agent.release_slot(task.id)
        self.save(task, agent, *followers)

    def heard_of(self, notification_id: int) -> None:
        """Another writer said (StoreAppended) the log holds events up to this id."""
        self.store_heard = max(self.store_heard, notification_id)

    def projection_budgets(self) -> set[str] | None:
        """Scopes that have a budget, as the projection knows them; None when another
        coordinator said it stored events this projection has not folded yet, one of which
        may have made a budget: the caller then reads its scopes' budgets from the store.
        Without this, a coordinator whose projection lagged placed work with no reservation
        on a budget the other had just set (a 3x overspend, seen end to end). No query:
        writers nudge before they reply, so a command caused by a budget's acceptance
        reaches another coordinator after that budget's nudge."""
        if self.store_heard > self.projection.position:
            return None
        return self.projection.budgets.scopes

    def reserve_for(self, task: Task, agent: Agent) -> list[Aggregate] | None:
        """Budgets to save with the task's assignment, their reservation made; None when a
        budget cannot hold the task, which has then ended (refused, naming the budget) --
        saved with whatever that end causes."""
        if self.projection_budgets() == set():
            return []
        return budget_commands.reserve(self, task, agent)

    def task_end_followers(self, task: Task) -> list[Aggregate]:
        return self._after_end(task)

    def _after_end(self, task: Task) -> list[Aggregate]:
        if not task.terminal:
            return []
        return [a for listener in self.task_end_listeners for a in listener(task)]

    # -- tasks ------------------------------------------------------------------------

    def _submit_task(self, cmd: c.SubmitTask) -> CommandReply:
        if cmd.idempotency_key is not None:
            earlier = self._submitted_before(cmd)
            if earlier is not None:
                return earlier
        check_prompt_size(cmd, self.limits)
        needs = admit(cmd, self.projection)
        if self.projection_budgets() != set():
            budget_commands.refuse_if_exhausted(self, cmd.actor, cmd.agent)
        if cmd.max_active_tasks is not None:
            unfinished = self.projection.unfinished_by(cmd.actor)
            unfinished += self._submitted_in_unit.get(cmd.actor, 0)
            if unfinished >= cmd.max_active_tasks:
                raise Rejected(
                    RejectCode.LIMITED,
                    f"{cmd.actor} has {unfinished} unfinished task(s), its limit is "
                    f"{cmd.max_active_tasks}; wait for one to end",
                )
        if self._unit is not None:
            self._submitted_in_unit[cmd.actor] = self._submitted_in_unit.get(cmd.actor, 0) + 1
        task = Task(
            prompt=preview(cmd.prompt) if cmd.prompt_ref else cmd.prompt,
            prompt_ref=cmd.prompt_ref.model_dump() if cmd.prompt_ref else None,
            priority=cmd.priority,
            capabilities=list(cmd.capabilities),
            agent_type=cmd.agent_type.value if cmd.agent_type else None,
            model=cmd.model,
            agent=cmd.agent,
            timeout_s=cmd.timeout_s,
            retry=cmd.retry.model_dump(),
            actor=cmd.actor,
            llm=cmd.llm.model_dump(mode="json") if cmd.llm else None,
            idempotency=idempotency.marker(cmd),
            depends_on=[str(d) for d in cmd.depends_on],
        )
        if task.depends_on:  # waits, or is released or skipped at once (dependencies.py)
            self.save(task, *self.workflows.dependencies.at_submit(task))
            return CommandReply.accept(task_id=str(task.id), status=task.status)
        self.save(task, *self._place_at_once(task, needs))
        return CommandReply.accept(task_id=str(task.id))

    def _submitted_before(self, cmd: c.SubmitTask) -> CommandReply | None:
        """The answer to a submit whose idempotency key already made a task: that task
        (`replayed`), or a refusal when the key came with a different request. Checked
        before admission and limits: a retry must get what the first submit got."""
        assert cmd.idempotency_key is not None
        task_id = task_id_for(cmd.actor, cmd.idempotency_key)
        task = self._task_in_unit(task_id)
        if task is None:
            try:
                task = self.aggregates.get(task_id)
            except AggregateNotFoundError:
                return None
        if not isinstance(task, Task):
            raise Rejected(RejectCode.INTERNAL, f"aggregate {task_id} is not a task")
        digest = (task.idempotency or {}).get("digest")
        if digest != idempotency.request_digest(cmd):
            raise Rejected(RejectCode.KEY_REUSED, idempotency.reused_reason(cmd, task_id))
        return CommandReply.accept(task_id=str(task_id), replayed="true")

    def _task_in_unit(self, task_id: UUID) -> Task | None:
        """A task decided earlier in this group commit (not in the store yet)."""
        for aggregate in self._unit or ():
            if isinstance(aggregate, Task) and aggregate.id == task_id:
                return aggregate
        return None

    def _place_at_once(self, task: Task, needs: Needs) -> list[Aggregate]:
        """With nothing queued ahead, assign in the submitting transaction: one commit and
        no scheduling pass on the way to the executor. Otherwise the scheduler decides,
        also once this submit lost PLACE_AT_ONCE_CONFLICTS races for the agent to another
        coordinator: placing is an optimisation, and retrying it against a busy rival
        could exhaust the retries and refuse the submit itself."""
        if self._conflicts >= PLACE_AT_ONCE_CONFLICTS:
            return []
        if self.projection.count(TaskStatus.QUEUED) or self._queued_in_unit():
            return []
        agents = self.projection.agents.values()
        forecast = SlotForecast.of(agents, self.projection.tasks, self.clock())
        rotation = self.projection.rotation.copy()  # credits folded from events (weights.py)
        load = {a.id: a.load for a in agents}
        chosen = choose(needs, agents, load, rotation=rotation, forecast=forecast)
        if chosen is None:
            return []
        agent = self.load_agent_by_id(chosen.id)
        if not (agent.enabled and agent.has_free_slot()):  # the projection was behind
            return []
        budgets = self.reserve_for(task, agent)
        if budgets is None:
            return self.task_end_followers(task)
        task.assign(agent.id, agent.name, rotation.take_turn())
        agent.take_slot(task.id, task.attempt)
        return [agent, *budgets]

    def _queued_in_unit(self) -> bool:
        """Whether a task submitted earlier in this group commit stayed queued."""
        return any(isinstance(a, Task) and a.status == TaskStatus.QUEUED for a in self._unit or ())

    def _start_task(self, cmd: c.StartTask) -> CommandReply:
        task = self.load_task(cmd.task_id)
        task.start(attempt=cmd.attempt, executor_id=cmd.executor_id)
        self.save(task)
        return CommandReply.accept(task_id=str(task.id))

    def _report_progress(self, cmd: c.ReportProgress) -> CommandReply:
        task = self.load_task(cmd.task_id)
        task.progress(attempt=cmd.attempt, message=cmd.message)
        self.save(task)
        return CommandReply.accept(task_id=str(task.id))

    def _complete_task(self, cmd: c.CompleteTask) -> CommandReply:
        task = self.load_task(cmd.task_id)
        if task.accepts_output_of(cmd.attempt):  # finished just as it was stopped
            return self._keep_output(task, cmd)
        held = task.agent_id
        task.complete(
            attempt=cmd.attempt,
            output=cmd.output,
            exit_code=cmd.exit_code,
            usage=cmd.usage.model_dump(),
            output_ref=cmd.output_ref.model_dump() if cmd.output_ref else None,
            stderr=cmd.stderr,
        )
        self.settle(task, held)
        return CommandReply.accept(task_id=str(task.id))

    def _fail_task(self, cmd: c.FailTask) -> CommandReply:
        task = self.load_task(cmd.task_id)
        if task.accepts_output_of(cmd.attempt):  # the report of a cancelled attempt
            return self._keep_output(task, cmd)
        held = task.agent_id
        if cmd.timed_out:
            task.time_out(attempt=cmd.attempt, reason=cmd.reason)
            task.keep_output(cmd.attempt, cmd.output, cmd.usage.model_dump(), cmd.stderr)
            self.settle(task, held)
            return CommandReply.accept(task_id=str(task.id), status=task.status)
        agent, retryable, reason = None, cmd.retryable, cmd.reason
        if cmd.missing_model and held is not None:
            task.check_attempt(cmd.attempt)
            agent = self.load_agent_by_id(held)
            agent.mark_model_missing(cmd.missing_model, task.id)
            if not self._another_agent_could_run(task.id, held):
                retryable = False
                reason = f"{reason}; no other agent has model '{cmd.missing_model}'"
        task.fail(
            attempt=cmd.attempt,
            reason=reason,
            output=cmd.output,
            exit_code=cmd.exit_code,
            usage=cmd.usage.model_dump(),
            retryable=retryable,
            now=self.clock(),
            rejected_for_agent=bool(cmd.missing_model),
            output_ref=cmd.output_ref.model_dump() if cmd.output_ref else None,
            stderr=cmd.stderr,
        )
        self.settle(task, held, agent)
        return CommandReply.accept(task_id=str(task.id), status=task.status)

    def _another_agent_could_run(self, task_id: UUID, other_than: UUID) -> bool:
        view = self.projection.tasks.get(task_id)
        if view is None:
            return True  # not folded yet (another coordinator's): let the scheduler decide
        needs = Needs.of(view)
        return any(
            eligible(needs, agent, ignore_state=True)
            for agent in self.projection.agents.values()
            if agent.id != other_than
        )

    def _keep_output(self, task: Task, cmd: c.CompleteTask | c.FailTask) -> CommandReply:
        """A stopped attempt's output: kept on the task, which stays cancelled/timed out."""
        usage = cmd.usage.model_dump()
        if task.keep_output(cmd.attempt, cmd.output, usage, cmd.stderr):
            self.save(task, *budget_commands.charge_kept(self, task, usage))
        return CommandReply.accept(task_id=str(task.id), status=task.status)

    def _cancel_task(self, cmd: c.CancelTask) -> CommandReply:
        task = self.load_task(cmd.task_id)
        held = task.agent_id
        task.cancel(reason=cmd.reason, actor=cmd.actor)
        self.settle(task, held)
        return CommandReply.accept(task_id=str(task.id))
