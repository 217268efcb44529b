"""The Task aggregate: one unit of work and its lifecycle.

queued -> assigned -> running -> completed | failed | cancelled | timed_out,
with a failed attempt going back to queued while the retry policy allows.
Executor reports name their attempt, so a late report from an executor that was
presumed dead cannot change a later attempt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.commands import RejectCode
from whoosh_shared.contract.enums import TaskStatus

from whoosh_coordinator.rejection import Rejected

ACTIVE = (TaskStatus.ASSIGNED.value, TaskStatus.RUNNING.value)
TASK_NAMESPACE = uuid5(NAMESPACE_URL, "whoosh:task")


def task_id_for(actor: str, idempotency_key: str) -> UUID:
    """The id of the task an actor's idempotency key names: derived, not remembered, so
    every coordinator (and one restarted after a crash) finds the same task, and the
    store's unique (id, version) refuses a second creation by a concurrent writer."""
    return uuid5(TASK_NAMESPACE, f"{actor}\x00{idempotency_key}")


class Task(Aggregate):
    @staticmethod
    def create_id(idempotency: dict[str, str] | None = None) -> UUID:
        if idempotency is None:
            return uuid4()
        return task_id_for(idempotency["actor"], idempotency["key"])

    @event("Submitted")
    def __init__(
        self,
        prompt: str,
        priority: int,
        capabilities: list[str],
        agent_type: str | None,
        model: str | None,
        agent: str | None,
        timeout_s: float,
        retry: dict[str, Any],
        actor: str,
        llm: dict[str, Any] | None = None,
        origin: dict[str, str] | None = None,
        prompt_ref: dict[str, Any] | None = None,
        idempotency: dict[str, str] | None = None,
        depends_on: list[str] | None = None,
    ) -> None:
        """`origin` names what created the task inside the coordinator (for example
        {"kind": "execution", "id": ..., "step": ...}); None for a task submitted directly.
        `idempotency` ({"actor", "key", "digest"}) when the submitter sent an idempotency
        key: the id derives from actor and key, the digest tells a retry from a reuse."""
        self.prompt = prompt
        self.prompt_ref = prompt_ref  # a BlobRef's fields: the prompt is in the blob store
        self.idempotency = idempotency
        self.origin = origin
        self.actor = actor  # whose budgets (key, thread) the task counts against
        self.llm = llm
        self.model = model
        self.timeout_s = timeout_s
        self.max_attempts = int(retry.get("max_attempts", 1))
        self.backoff_s = float(retry.get("backoff_s", 0.0))
        self.workspace_disposable = bool(retry.get("workspace_disposable", False))
        self.depends_on = list(depends_on or [])
        self.status = (TaskStatus.WAITING if self.depends_on else TaskStatus.QUEUED).value
        self.attempt = 0
        self.agent_id: UUID | None = None
        self.agent_name: str | None = None
        self.tried_agents: list[str] = []
        self.rejections = 0  # attempts an agent refused outright: they do not count as tries
        self.output_kept = False
        self.answer = ""  # the output, kept only for tasks with an origin (see _completed)
        self.end_reason: str | None = None
        self.usage: dict[str, Any] = {}

    @property
    def terminal(self) -> bool:
        return TaskStatus(self.status).terminal

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    # -- assignment -------------------------------------------------------------------

    def assign(
        self, agent_id: UUID, agent_name: str, weighted_among: dict[str, int] | None = None
    ) -> None:
        """`weighted_among`: the agents (id -> weight) whose traffic weights chose this one,
        recorded so the weighted rotation is folded from events (weights.py)."""
        if self.status != TaskStatus.QUEUED.value:
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}, not queued")
        self._assigned(
            agent_id=agent_id,
            agent_name=agent_name,
            attempt=self.attempt + 1,
            weighted_among=weighted_among or None,
        )

    @event("Assigned")
    def _assigned(
        self,
        agent_id: UUID,
        agent_name: str,
        attempt: int,
        weighted_among: dict[str, int] | None = None,
    ) -> None:
        self.status = TaskStatus.ASSIGNED.value
        self.agent_id = agent_id
        self.agent_name = agent_name
        self.attempt = attempt

    # -- executor reports -------------------------------------------------------------

    def check_attempt(self, attempt: int) -> None:
        if not self.active:
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}")
        if attempt != self.attempt:
            raise Rejected(
                RejectCode.BAD_STATE,
                f"task {self.id}: attempt {attempt} is stale (current attempt {self.attempt})",
            )

    def start(self, attempt: int, executor_id: str) -> None:
        """A redelivered attempt starts again on another executor; that is recorded too."""
        self.check_attempt(attempt)
        self._started(attempt=attempt, executor_id=executor_id)

    @event("Started")
    def _started(self, attempt: int, executor_id: str) -> None:
        self.status = TaskStatus.RUNNING.value

    def progress(self, attempt: int, message: str) -> None:
        self.check_attempt(attempt)
        self._progressed(attempt=attempt, message=message)

    @event("Progressed")
    def _progressed(self, attempt: int, message: str) -> None:
        pass

    def complete(
        self,
        attempt: int,
        output: str,
        exit_code: int | None,
        usage: dict[str, Any],
        output_ref: dict[str, Any] | None = None,
        stderr: str = "",
    ) -> None:
        self.check_attempt(attempt)
        self._completed(
            attempt=attempt,
            output=output,
            exit_code=exit_code,
            usage=usage,
            output_ref=output_ref,
            stderr=stderr,
        )

    @event("Completed")
    def _completed(
        self,
        attempt: int,
        output: str,
        exit_code: int | None,
        usage: dict[str, Any],
        output_ref: dict[str, Any] | None = None,
        stderr: str = "",  # absent from events stored before it existed
    ) -> None:
        self.status = TaskStatus.COMPLETED.value
        self.usage = usage
        if self.origin:  # what created the task reads its answer when it ends
            self.answer = output

    def fail(
        self,
        attempt: int,
        reason: str,
        output: str,
        exit_code: int | None,
        usage: dict[str, Any],
        retryable: bool,
        now: datetime,
        rejected_for_agent: bool = False,
        output_ref: dict[str, Any] | None = None,
        stderr: str = "",
    ) -> bool:
        """Record a failed attempt; returns True when the task went back to the queue.

        An attempt the agent rejected outright (its server lacks the model) never ran, so
        it goes back to the queue without using up one of the retry policy's attempts."""
        self.check_attempt(attempt)
        tries = self.attempt - self.rejections
        if retryable and (rejected_for_agent or tries < self.max_attempts):
            not_before = now + timedelta(seconds=self.backoff_s) if self.backoff_s else None
            self._attempt_failed(
                attempt=attempt,
                agent_name=self.agent_name,
                reason=reason,
                exit_code=exit_code,
                output=output,
                not_before=not_before,
                rejected_for_agent=rejected_for_agent,
                output_ref=output_ref,
                stderr=stderr,
            )
            return True
        if retryable:
            reason = f"{reason} (gave up after {tries} attempt(s))"
        self._failed(
            attempt=attempt,
            reason=reason,
            exit_code=exit_code,
            output=output,
            usage=usage,
            output_ref=output_ref,
            stderr=stderr,
        )
        return False

    @event("AttemptFailed")
    def _attempt_failed(
        self,
        attempt: int,
        agent_name: str | None,
        reason: str,
        exit_code: int | None,
        output: str,
        not_before: datetime | None,
        rejected_for_agent: bool = False,
        output_ref: dict[str, Any] | None = None,
        stderr: str = "",
    ) -> None:
        self.status = TaskStatus.QUEUED.value
        self.rejections += int(rejected_for_agent)
        if agent_name and agent_name not in self.tried_agents:
            self.tried_agents.append(agent_name)
        self.agent_id = None
        self.agent_name = None

    @event("Failed")
    def _failed(
        self,
        attempt: int,
        reason: str,
        exit_code: int | None,
        output: str,
        usage: dict[str, Any],
        output_ref: dict[str, Any] | None = None,
        stderr: str = "",
    ) -> None:
        self.status = TaskStatus.FAILED.value
        self.usage = usage
        self.end_reason = reason

    # -- dependencies -------------------------------------------------------------------

    def release(self) -> None:
        """Every dependency completed: the task joins the queue."""
        if self.status != TaskStatus.WAITING.value:
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}, not waiting")
        self._released()

    @event("Released")
    def _released(self) -> None:
        self.status = TaskStatus.QUEUED.value

    def skip(self, reason: str) -> None:
        if self.status != TaskStatus.WAITING.value:
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}, not waiting")
        self._skipped(reason=reason)

    @event("Skipped")
    def _skipped(self, reason: str) -> None:
        self.status = TaskStatus.SKIPPED.value

    # -- ends decided by the coordinator or a user ---------------------------------

    def refuse(self, reason: str) -> None:
        """End a queued task that may not run (a budget cannot hold it): failed, with the
        reason, before any agent was given it."""
        if self.status != TaskStatus.QUEUED.value:
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}, not queued")
        self._failed(attempt=self.attempt, reason=reason, exit_code=None, output="", usage={})

    def cancel(self, reason: str, actor: str) -> None:
        if self.terminal:
            raise Rejected(
                RejectCode.BAD_STATE, f"task {self.id} is already {self.status}; nothing to cancel"
            )
        self._cancelled(reason=reason, actor=actor)

    @event("Cancelled")
    def _cancelled(self, reason: str, actor: str) -> None:
        self.status = TaskStatus.CANCELLED.value
        self.end_reason = reason

    def time_out(self, attempt: int, reason: str) -> None:
        self.check_attempt(attempt)
        self._timed_out(attempt=attempt, reason=reason)

    @event("TimedOut")
    def _timed_out(self, attempt: int, reason: str) -> None:
        self.status = TaskStatus.TIMED_OUT.value
        self.end_reason = reason

    # -- what a stopped attempt had done ----------------------------------------------

    def accepts_output_of(self, attempt: int) -> bool:
        """Whether a late report is the output of the attempt a cancel or timeout stopped."""
        stopped = (TaskStatus.CANCELLED.value, TaskStatus.TIMED_OUT.value)
        return self.status in stopped and attempt == self.attempt and attempt > 0

    def keep_output(
        self, attempt: int, output: str, usage: dict[str, Any], stderr: str = ""
    ) -> bool:
        """Keep the partial output of the stopped attempt (once); True if recorded."""
        if not self.accepts_output_of(attempt):
            raise Rejected(RejectCode.BAD_STATE, f"task {self.id} is {self.status}")
        if self.output_kept or not (output or stderr or any(usage.values())):
            return False
        self._output_kept(attempt=attempt, output=output, usage=usage, stderr=stderr)
        return True

    @event("OutputKept")
    def _output_kept(
        self, attempt: int, output: str, usage: dict[str, Any], stderr: str = ""
    ) -> None:
        self.output_kept = True
        self.kept_usage = usage  # what the stopped attempt used: charged to its budgets
