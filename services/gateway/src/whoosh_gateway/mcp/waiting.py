"""A bounded long poll on one task, with progress notifications while it runs.

Why a long poll rather than holding the task's whole life: AI hosts cut tool calls that
stay silent (Claude Code after 300 s without a message), and some cut any call at about
60 s. So a wait lasts at most `gateway.mcp.max_wait_s`, sends a progress notification at
least every `progress_interval_s` carrying the task's latest output line (which also
resets the host's idle clock), and ending it -- by timeout, or by the client going
away -- never touches the task: only whoosh_cancel_task cancels.

The gateway's event hub wakes the wait when the task's events or output lines arrive
(from any coordinator, any executor), and a slow poll of the coordinator covers a
missed message, so a wait through any gateway sees the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import GetTask, TaskView
from whoosh_shared.contract.work import ProgressLine

from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.event_hub import EventHub

POLL_S = 2.0  # the coordinator is asked at least this often, whatever the hub says
Report = Callable[[float, float, str], Awaitable[None]]


class _TaskWatch:
    """A hub listener for one task: wakes the wait, keeps the newest output line."""

    def __init__(self, task_id: UUID) -> None:
        self.task_id = task_id
        self.changed = asyncio.Event()
        self.latest_line: str | None = None

    def offer_event(self, envelope: EventEnvelope, text: str | None) -> None:
        if envelope.aggregate_id == self.task_id:
            self.changed.set()

    def offer_line(self, line: ProgressLine, text: str) -> None:
        if line.task_id == self.task_id and line.line.strip():
            self.latest_line = line.line.rstrip()[-500:]


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
    started = time.monotonic()
    deadline = started + timeout_s
    watch = _TaskWatch(task_id)
    hub.listeners.add(watch)
    try:
        view = await coordinator.ask(GetTask(task_id=task_id), TaskView)
        last_report = -interval_s
        while not view.status.terminal:
            now = time.monotonic()
            if now >= deadline:
                break
            if now - started - last_report >= interval_s:
                last_report = now - started
                await report(last_report, timeout_s, _message(view, watch))
            wake_in = min(POLL_S, deadline - now, interval_s - (now - started - last_report))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), max(0.01, wake_in))
            watch.changed.clear()
            view = await coordinator.ask(GetTask(task_id=task_id), TaskView)
        return view, view.status.terminal, time.monotonic() - started
    finally:
        hub.listeners.discard(watch)


def _message(view: TaskView, watch: _TaskWatch) -> str:
    line = watch.latest_line or view.last_progress
    where = f" on {view.agent}" if view.agent else ""
    return f"{view.status.value}{where}" + (f": {line}" if line else "")
