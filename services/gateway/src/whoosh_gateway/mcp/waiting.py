"""Bounded long polls on a task or an execution, with progress notifications meanwhile.

Why a long poll rather than holding the work's whole life: AI hosts cut tool calls that
stay silent (Claude Code after 300 s without a message), and some cut any call at about
60 s. So a wait lasts at most `gateway.mcp.max_wait_s`, sends a progress notification at
least every `progress_interval_s` carrying the latest output line (which also resets the
host's idle clock), and ending it -- by timeout, or by the client going away -- never
touches the work: only a cancel tool cancels.

The gateway's event hub wakes the wait when the watched aggregates' events or output
lines arrive (from any coordinator, any executor), and a slow poll of the coordinator
covers a missed message, so a wait through any gateway sees the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import GetTask, TaskView
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.contract.workflows import ExecutionView, GetExecution

from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.event_hub import EventHub

POLL_S = 2.0  # the coordinator is asked at least this often, whatever the hub says
Report = Callable[[float, float, str], Awaitable[None]]
View = TypeVar("View")


class _Watch:
    """A hub listener for some aggregates: wakes the wait, keeps the newest output line
    of the watched tasks. `track` adds ids while waiting (an execution's step tasks, known
    only once the coordinator has placed them), starting from the hub's recent lines."""

    def __init__(self, hub: EventHub, ids: set[UUID]) -> None:
        self.hub = hub
        self.ids: set[UUID] = set()
        self.changed = asyncio.Event()
        self.latest_line: str | None = None
        self.track(ids)

    def track(self, ids: set[UUID]) -> set[UUID]:
        """Watch these too; returns the new ones that sent no line lately."""
        silent = set()
        for new in ids - self.ids:
            self.ids.add(new)
            lines = [line for line, _ in self.hub.recent_lines.of(new) if line.line.strip()]
            if lines:
                self.latest_line = lines[-1].line.rstrip()[-500:]
            else:
                silent.add(new)
        return silent

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None:
        if envelope.aggregate_id in self.ids:
            self.changed.set()

    def offer_line(self, line: ProgressLine, text: str) -> None:
        if line.task_id in self.ids and line.line.strip():
            self.latest_line = line.line.rstrip()[-500:]


async def _long_poll(
    hub: EventHub,
    watch: _Watch,
    fetch: Callable[[], Awaitable[View]],
    settled: Callable[[View], bool],
    describe: Callable[[View, str | None], str],
    timeout_s: float,
    interval_s: float,
    report: Report,
) -> tuple[View, bool, float]:
    """(the latest view, whether it settled, seconds waited)."""
    started = time.monotonic()
    deadline = started + timeout_s
    hub.listeners.add(watch)
    try:
        view = await fetch()
        last_report = -interval_s
        while not settled(view):
            now = time.monotonic()
            if now >= deadline:
                break
            if now - started - last_report >= interval_s:
                last_report = now - started
                await report(last_report, timeout_s, describe(view, watch.latest_line))
            wake_in = min(POLL_S, deadline - now, interval_s - (now - started - last_report))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), max(0.01, wake_in))
            watch.changed.clear()
            view = await fetch()
        return view, settled(view), time.monotonic() - started
    finally:
        hub.listeners.discard(watch)


async def wait_for_task(
    coordinator: CoordinatorClient,
    hub: EventHub,
    task_id: UUID,
    timeout_s: float,
    interval_s: float,
    report: Report,
) -> tuple[TaskView, bool, float]:
    """(the task's view, whether it ended, seconds waited). An unknown task raises the
    coordinator's not_found at once."""

    async def fetch() -> TaskView:
        return await coordinator.ask(GetTask(task_id=task_id), TaskView)

    return await _long_poll(
        hub, _Watch(hub, {task_id}), fetch, lambda v: v.status.terminal, _task_message,
        timeout_s, interval_s, report,
    )  # fmt: skip


def _task_message(view: TaskView, line: str | None) -> str:
    line = line or view.last_progress
    where = f" on {view.agent}" if view.agent else ""
    return f"{view.status.value}{where}" + (f": {line}" if line else "")


def execution_settled(view: ExecutionView) -> bool:
    """Ended, or nothing will happen until a human decides an approval."""
    return view.status != "running" or bool(awaiting_approval(view))


def awaiting_approval(view: ExecutionView) -> list[str]:
    return [s.id for s in view.steps if s.waiting_for == "approval"]


async def wait_for_execution(
    coordinator: CoordinatorClient,
    hub: EventHub,
    execution_id: UUID,
    timeout_s: float,
    interval_s: float,
    report: Report,
) -> tuple[ExecutionView, bool, float]:
    """(the execution's view, whether it settled -- ended or waits for an approval --,
    seconds waited). The watch follows the execution and its running steps' tasks, so a
    step's output lines make the progress messages."""
    watch = _Watch(hub, {execution_id})

    async def fetch() -> ExecutionView:
        view = await coordinator.ask(GetExecution(execution_id=execution_id), ExecutionView)
        running = {s.task_id for s in view.steps if s.task_id and s.status == "running"}
        for task_id in sorted(watch.track(running))[:4]:  # lines sent before the wait began
            task = await coordinator.ask(GetTask(task_id=task_id), TaskView)
            watch.latest_line = task.last_progress or watch.latest_line
        return view

    return await _long_poll(
        hub, watch, fetch, execution_settled, _execution_message, timeout_s, interval_s, report
    )


def _execution_message(view: ExecutionView, line: str | None) -> str:
    running = [s.id for s in view.steps if s.status == "running"]
    done = sum(1 for s in view.steps if s.status not in ("pending", "running", "waiting"))
    text = f"{view.status}: {done}/{len(view.steps)} steps done"
    if running:
        text += f"; running {', '.join(running)}"
    return text + (f": {line}" if line else "")
