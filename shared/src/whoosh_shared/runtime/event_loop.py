"""Every service's event loop: uvloop where it is installed, asyncio's own otherwise, and
the garbage collector tuned for a long-running service.

Each WHOOSH task crosses several services' event loops a few times (commands, replies,
JetStream messages); uvloop runs each of those callbacks with less overhead than the
pure-Python selector loop, which matters on a busy host. `WHOOSH_EVENT_LOOP=asyncio`
selects the standard loop (for debugging, or to compare in a benchmark).

The collector: a service imports a few hundred thousand objects it keeps for its whole
life (modules, pydantic schemas, the NATS client), and Python's cyclic collector walked
all of them at every full collection, with the loop stopped: measured during
bench_noop, 60-100 ms per full collection in the coordinator and 35-40 ms in
executor-cli, every few seconds under load, with every task in flight waiting; and
young collections every 700 allocations added 5-15 ms more per second. So before the
loop starts what exists is frozen (`gc.freeze`: kept out of every later collection; next
to none of it is garbage, 80 unreachable objects after the coordinator's imports) and
young collections are rarer (GC_THRESHOLDS). Measured: executor full collections
35 ms -> 2 ms; same-run A/B of bench_noop, SQLite 481 -> 568 tasks/s, PostgreSQL 477 ->
504, the worst latency one at a time 53 -> 13 ms and at 32 in flight 143 -> 67 ms.
Cyclic garbage made later still gets collected; `WHOOSH_GC=python` keeps the
interpreter's defaults (to compare).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "WHOOSH_EVENT_LOOP"
GC_ENV = "WHOOSH_GC"
# Collections of the youngest generation every 10,000 net allocations instead of 700
# (most objects are freed by their reference count long before), the middle one every
# 20 of those, the oldest every 20 of the middle ones (and still only once the objects
# that survived since the last full collection are a quarter of the old ones).
GC_THRESHOLDS = (10_000, 20, 20)
# How long the tasks still running when `main` ends get to finish once cancelled.
LEFTOVER_GRACE_S = 3.0

log = logging.getLogger(__name__)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default."""
    if os.environ.get(ENV, "uvloop").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not installed on this platform (Windows): the standard loop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen loop, with a bounded end. (executor-cli runs its
    commands without the loop's subprocess support, whose uvloop version forks the whole
    process: see whoosh_executor_cli.child_process.)

    asyncio.run cancels the tasks `main` left behind and waits for them without a limit.
    nats-py's reconnect task can swallow that cancellation while its server is gone (seen
    after a kill -9 of `whoosh up`, which takes NATS down with the services) and then
    retries forever, so the process never exits. Leftovers get LEFTOVER_GRACE_S; a task
    still running after that is named in the log and the process exits without it."""
    tune_gc()
    runner = asyncio.Runner(loop_factory=loop_factory())
    failed = True
    try:
        result = runner.run(main)
        failed = False
        return result
    finally:
        stuck = runner.run(_cancel_leftovers(LEFTOVER_GRACE_S))
        if stuck:
            _exit_now(stuck, 1 if failed else 0)
        runner.close()


def tune_gc() -> None:
    """Freeze what the process has built so far and make young collections rarer (see the
    module's docstring), unless WHOOSH_GC=python."""
    if os.environ.get(GC_ENV, "").strip().lower() == "python":
        return
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _cancel_leftovers(grace_s: float) -> list[str]:
    """Cancel every other task and wait up to `grace_s`; the names of those still running."""
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    if not rest:
        return []
    _, pending = await asyncio.wait(rest, timeout=grace_s)
    return sorted(_describe(task) for task in pending)


def _describe(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or task.get_name()


def _exit_now(stuck: list[str], code: int) -> None:
    """Leave without the stuck tasks; an exception `main` raised is logged, not lost."""
    if (error := sys.exc_info()[1]) is not None:
        log.error("%s: %s", type(error).__name__, error)
    log.warning(
        "stopping without waiting for %d task(s) that ignored cancellation: %s",
        len(stuck),
        ", ".join(stuck),
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def kind() -> str:
    """The loop this process would run on, for start-up banners."""
    return "asyncio" if loop_factory() is None else "uvloop"
