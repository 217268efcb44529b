"""Every service's event loop: uvloop where it is installed, asyncio's own otherwise.

Each WHOOSH task crosses several services' event loops a few times (commands, replies,
JetStream messages); uvloop runs each of those callbacks with less overhead than the
pure-Python selector loop, which matters on a busy host. `WHOOSH_EVENT_LOOP=asyncio`
selects the standard loop (for debugging, or to compare in a benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "WHOOSH_EVENT_LOOP"
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
