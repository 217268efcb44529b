"""`whoosh task submit --wait`: follow one task live until it ends.

The task id is known only after the submit is accepted, and a fast agent can
finish within milliseconds, so the watcher subscribes to every task's events
and output *before* submitting and keeps what arrives in a queue. Once the id
is known it narrows to that task, asks GetTask for the state so far, and also
re-asks now and then, so a task that ended while nobody was listening (or an
event the relay delivers late) never leaves `--wait` hanging.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from whoosh_shared.contract import events, subjects
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import GetTask, TaskView
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.bus import Bus

from whoosh_cli.bus_session import ask
from whoosh_cli.errors import CliError, UnreachableError
from whoosh_cli.output import notice
from whoosh_cli.stream_render import OutputWriter, Progress, verbose_summary
from whoosh_cli.task_outcome import Outcome

POLL_INTERVAL_S = 2.0
LATE_LINES_GRACE_S = 0.3  # output lines may trail the terminal event by a moment


@dataclass
class _Seen:
    notifications: set[int] = field(default_factory=set)
    lines: set[tuple[int, int]] = field(default_factory=set)
    attempts_with_output: set[int] = field(default_factory=set)
    submitted_at: datetime | None = None
    started_at: datetime | None = None


class TaskWatch:
    """Subscribes before the submit; then follows one task to its end."""

    def __init__(self, bus: Bus, live_output: bool = True, verbose: bool = False) -> None:
        self.bus = bus
        self.live_output = live_output
        self.verbose = verbose
        self.writer = OutputWriter(Progress(), live=live_output)
        self.writer.progress.enabled = False  # this follower prints notices, no status line
        self._usage: dict[str, object] = {}
        self._say = self.writer.progress.say  # notices below an unfinished line of tokens
        self.task_id: UUID | None = None
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._subs: list[Subscription] = []
        self._seen = _Seen()

    async def subscribe_all(self) -> None:
        """Listen to every task's events and output; call before submitting."""
        await self._subscribe(f"{subjects.PROGRESS_PREFIX}.*", f"{subjects.EVENT_PREFIX}.task.*.*")

    async def focus(self, task_id: UUID) -> None:
        """Narrow the subscriptions to one task (duplicates in between are dropped)."""
        self.task_id = task_id
        wide = list(self._subs)
        await self._subscribe(subjects.progress(str(task_id)), subjects.task_events(str(task_id)))
        for sub in wide:
            with suppress(Exception):
                await sub.unsubscribe()
            self._subs.remove(sub)

    async def _subscribe(self, *subject_names: str) -> None:
        for subject in subject_names:
            self._subs.append(await self.bus.nc.subscribe(subject, cb=self._queue.put))
        await self.bus.nc.flush()  # the server now routes to us: nothing after this is missed

    async def close(self) -> None:
        for sub in self._subs:
            with suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def follow(self) -> Outcome:
        """Print output and status changes until the task is terminal."""
        assert self.task_id is not None, "focus() first"
        try:
            return await self._follow()
        except asyncio.CancelledError:
            notice(
                f"whoosh: stopped waiting; task {self.task_id} goes on "
                f"(cancel it with: whoosh task cancel {self.task_id})"
            )
            raise

    async def _follow(self) -> Outcome:
        view = await self._fetch_view()
        if view is not None and view.status.terminal:
            return await self._finish(self._outcome_from_view(view))
        while True:
            try:
                msg = await asyncio.wait_for(self._queue.get(), POLL_INTERVAL_S)
            except TimeoutError:
                view = await self._fetch_view()
                if view is not None and view.status.terminal:
                    return await self._finish(self._outcome_from_view(view))
                continue
            outcome = self._handle(msg)
            if outcome is not None:
                return await self._finish(outcome)

    async def _finish(self, outcome: Outcome) -> Outcome:
        """Print lines that trail the end, then the stored output if none came live."""
        outcome.task_id = self.task_id
        await asyncio.sleep(LATE_LINES_GRACE_S)
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            if msg.subject.startswith(subjects.PROGRESS_PREFIX + "."):
                self._handle_line(msg)
        if outcome.attempt not in self._seen.attempts_with_output:
            self.writer.write_stored(outcome.output)
        self.writer.finish()
        if self.verbose:
            for line in verbose_summary(self._usage, self.writer.clock):
                notice(line)
        return outcome

    async def _fetch_view(self) -> TaskView | None:
        """The task's stored state; None while the projection has not caught up."""
        try:
            return await ask(self.bus, GetTask(task_id=self.task_id), TaskView)
        except UnreachableError:
            raise
        except CliError:
            return None

    def _outcome_from_view(self, view: TaskView) -> Outcome:
        self._seen.submitted_at = self._seen.submitted_at or view.submitted_at
        self._seen.started_at = self._seen.started_at or view.started_at
        self._usage = view.usage.model_dump(mode="json")
        self._announce_end(view.status, view.reason, view.usage.duration_s, view.finished_at)
        return Outcome(view.status, view.reason, view.output, view.attempt)

    def _handle(self, msg: Msg) -> Outcome | None:
        if msg.subject.startswith(subjects.PROGRESS_PREFIX + "."):
            self._handle_line(msg)
            return None
        return self._handle_event(msg)

    def _handle_line(self, msg: Msg) -> None:
        try:
            line = ProgressLine.model_validate_json(msg.data)
        except ValidationError:
            return
        key = (line.attempt, line.seq)
        if line.task_id != self.task_id or key in self._seen.lines:
            return
        self._seen.lines.add(key)
        if line.stream != "stderr":
            self._seen.attempts_with_output.add(line.attempt)
        self.writer.write(line.stream, line.line)

    def _handle_event(self, msg: Msg) -> Outcome | None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
            payload = envelope.payload()
        except (ValidationError, KeyError):
            return None
        if envelope.aggregate_id != self.task_id:
            return None
        if envelope.notification_id in self._seen.notifications:
            return None
        self._seen.notifications.add(envelope.notification_id)
        return self._on_event(envelope, payload)

    def _on_event(self, envelope: EventEnvelope, payload: events.EventData) -> Outcome | None:
        match payload:
            case events.TaskSubmitted():
                self._seen.submitted_at = envelope.timestamp
                self._say(f"whoosh: task {self.task_id} queued (priority {payload.priority})")
            case events.TaskAssigned():
                self._say(f"whoosh: assigned to {payload.agent_name} (attempt {payload.attempt})")
            case events.TaskStarted():
                self._seen.started_at = envelope.timestamp
                if payload.attempt not in self._seen.attempts_with_output:  # see ws_follow
                    self._say(f"whoosh: running (executor {payload.executor_id})")
            case events.TaskProgressed():
                self._say(f"whoosh: {payload.message}")
            case events.TaskAttemptFailed():
                on = f" on {payload.agent_name}" if payload.agent_name else ""
                why = payload.reason
                self._say(f"whoosh: attempt {payload.attempt} failed{on}: {why}; retrying")
            case events.TaskCompleted():
                self._usage = payload.usage.model_dump(mode="json")
                self._announce_end(
                    TaskStatus.COMPLETED, None, payload.usage.duration_s, envelope.timestamp
                )
                return Outcome(TaskStatus.COMPLETED, None, payload.output, payload.attempt)
            case events.TaskFailed():
                self._announce_end(TaskStatus.FAILED, payload.reason, 0.0, envelope.timestamp)
                return Outcome(TaskStatus.FAILED, payload.reason, payload.output, payload.attempt)
            case events.TaskCancelled():
                self._announce_end(TaskStatus.CANCELLED, payload.reason, 0.0, envelope.timestamp)
                return Outcome(TaskStatus.CANCELLED, payload.reason)
            case events.TaskTimedOut():
                self._announce_end(TaskStatus.TIMED_OUT, payload.reason, 0.0, envelope.timestamp)
                return Outcome(TaskStatus.TIMED_OUT, payload.reason, "", payload.attempt)
            case events.TaskSkipped():
                self._announce_end(TaskStatus.SKIPPED, payload.reason, 0.0, envelope.timestamp)
                return Outcome(TaskStatus.SKIPPED, payload.reason)
        return None

    def _announce_end(
        self, status: TaskStatus, reason: str | None, duration_s: float, at: datetime | None
    ) -> None:
        if status is TaskStatus.COMPLETED:
            took = duration_s or self._elapsed(at, self._seen.started_at)
            timing = f" in {took:.1f}s" if took else ""
        else:
            took = self._elapsed(at, self._seen.submitted_at)
            timing = f" after {took:.1f}s" if took else ""
        why = f": {reason}" if reason else ""
        self.writer.finish()
        self._say(f"whoosh: {status.value.replace('_', ' ')}{timing}{why}")

    def _elapsed(self, at: datetime | None, since: datetime | None) -> float:
        since = since or self._seen.submitted_at
        if at is None or since is None:
            return 0.0
        return max(0.0, (at - since).total_seconds())
