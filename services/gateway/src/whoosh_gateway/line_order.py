"""Output lines wait, briefly, for their attempt's start to be passed on.

An executor may start a command (or an LLM call) before its claim is answered
(`executor.start_before_claim`) and sends the held output the moment the claim is
accepted: straight to the gateways, while the `TaskStarted` that accepted it travels
through the store and its relay. Without this, a client could see an attempt's first
lines before its `execution_started`. Lines of an attempt whose start this gateway has
not passed on yet are held until it is, or for at most `HOLD_S` (a gateway that came
up after the start never sees it); any other event of the task releases them first, so
lines never follow their attempt's end either. The wait is the relay's lag, a few
milliseconds, and only for the lines that beat it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from whoosh_shared.contract.work import ProgressLine

HOLD_S = 5.0  # at most, for an attempt whose start this gateway never sees (a gateway that
# came up after it): long enough for the relay's lag on a loaded machine
STARTS_KEPT = 50_000  # attempts remembered as started (oldest forgotten first)
HELD_PER_ATTEMPT = 2_000  # lines held for one attempt before they go out anyway
# Events that release no held lines: those before a start, and the start itself (the
# hub sends it, then calls `started`, which releases that attempt's lines after it).
BEFORE_START = frozenset(
    {"TaskSubmitted", "TaskReleased", "TaskSkipped", "TaskAssigned", "TaskStarted"}
)

Attempt = tuple[UUID, int]
Release = Callable[[ProgressLine, str], None]


class LineOrder:
    """Decides whether a line goes out now or waits for its attempt's start."""

    def __init__(self, release: Release, hold_s: float = HOLD_S) -> None:
        self._release = release
        self._hold_s = hold_s
        self._started: OrderedDict[Attempt, None] = OrderedDict()
        self._held: dict[Attempt, list[tuple[ProgressLine, str]]] = {}

    def offer(self, line: ProgressLine, text: str) -> None:
        """Pass the line on now if its attempt is known to have started, else hold it."""
        key = (line.task_id, line.attempt)
        if key in self._started:
            self._release(line, text)
            return
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = []
            asyncio.get_running_loop().call_later(self._hold_s, self.started, *key)
        held.append((line, text))
        if len(held) >= HELD_PER_ATTEMPT:
            self.started(*key)

    def started(self, task_id: UUID, attempt: int) -> None:
        """The attempt's start went out (or its wait ran out): its lines follow it."""
        key = (task_id, attempt)
        self._started[key] = None
        self._started.move_to_end(key)
        if len(self._started) > STARTS_KEPT:
            self._started.popitem(last=False)
        for line, text in self._held.pop(key, ()):
            self._release(line, text)

    def before_event(self, aggregate_id: UUID, event_type: str) -> None:
        """An event of the task that comes after a start (its progress, its end) is
        about to go out: the lines held for the task go first."""
        if not self._held or event_type in BEFORE_START:
            return
        for task, attempt in [key for key in self._held if key[0] == aggregate_id]:
            self.started(task, attempt)
