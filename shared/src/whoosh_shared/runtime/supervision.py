"""Supervised loops: no long-lived loop may die silently.

A service's loops (the relay, the scheduler, consumers, probes) run under `supervise`:
an exception is logged at ERROR with its cause and traceback, the loop is marked down in
the service's `LoopHealth`, and it is restarted after a backoff that doubles up to a cap.
A loop marks itself healthy (`health.up(name)`) once it has done useful work again, so
"restarted" is not mistaken for "working". `LoopHealth.down_now()` is what readiness
checks (`/readyz`, `whoosh status`) report; processes other than the coordinator publish
theirs as loop reports (`loop_reports`), which the coordinator adds to its own.

Fault injection, for tests against real processes only: `WHOOSH_FAULT_LOOP="NAME:N;..."`
makes the loop NAME raise at its first N starts (N absent: at every start), exactly as a
loop whose body raises would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 10.0


@dataclass
class LoopState:
    healthy: bool = True
    cause: str = ""
    since: float = field(default_factory=time.time)
    restarts: int = 0


class LoopHealth:
    """The health of one process's loops, by name."""

    def __init__(self) -> None:
        self.loops: dict[str, LoopState] = {}

    def up(self, name: str) -> None:
        state = self.loops.setdefault(name, LoopState())
        if not state.healthy:
            log.info("%s is healthy again", name)
            state.healthy, state.cause, state.since = True, "", time.time()

    def down(self, name: str, cause: str) -> None:
        state = self.loops.setdefault(name, LoopState())
        if state.healthy:
            state.since = time.time()
        state.healthy, state.cause = False, cause

    def down_now(self) -> dict[str, str]:
        """Loops not healthy now, each with what went wrong."""
        return {name: s.cause for name, s in sorted(self.loops.items()) if not s.healthy}


class InjectedFault(RuntimeError):
    """Raised by a loop that `WHOOSH_FAULT_LOOP` names (tests only)."""


def _injected_faults() -> dict[str, int]:
    """`WHOOSH_FAULT_LOOP` as {loop name: starts that fail} (-1: every start)."""
    faults: dict[str, int] = {}
    for entry in os.environ.get("WHOOSH_FAULT_LOOP", "").split(";"):
        name, _, count = entry.strip().partition(":")
        if name:
            faults[name] = int(count) if count.strip().isdigit() else -1
    return faults


_FAULTS = _injected_faults()


def _inject_fault(name: str) -> None:
    left = _FAULTS.get(name, 0)
    if left == 0:
        return
    if left > 0:
        _FAULTS[name] = left - 1
    raise InjectedFault(f"fault injected into {name} (WHOOSH_FAULT_LOOP)")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[object]],
    health: LoopHealth,
    first_backoff_s: float = FIRST_BACKOFF_S,
    max_backoff_s: float = MAX_BACKOFF_S,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run `run()` for ever: restarted with backoff whenever it raises or returns.
    Cancellation (the service stopping) is the only way out, or, for a loop that ends by
    itself when its process stops, a return once `stopping` is set."""
    backoff = first_backoff_s
    health.loops.setdefault(name, LoopState())
    while True:
        started = time.monotonic()
        try:
            _inject_fault(name)
            await run()
            if stopping is not None and stopping.is_set():
                return
            cause = "the loop returned"
            log.error("%s stopped (it should run until cancelled); restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            cause = f"{type(exc).__name__}: {exc}"
            log.error("%s died: %s; restarting in %.2fs", name, cause, backoff, exc_info=exc)
        health.down(name, cause)
        health.loops[name].restarts += 1
        if time.monotonic() - started > 60:
            backoff = first_backoff_s  # it had run a good while: start the backoff again
        if await _stopped_within(stopping, backoff):
            return
        backoff = min(backoff * 2, max_backoff_s)


async def _stopped_within(stopping: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds`, cut short (True) when the process stops meanwhile."""
    if stopping is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True
