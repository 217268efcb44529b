"""Every service's event loop: uvloop where it is installed, asyncio's own otherwise.

Each WHOOSH task crosses several services' event loops a few times (commands, replies,
JetStream messages); uvloop runs each of those callbacks with less overhead than the
pure-Python selector loop, which matters on a busy host. `WHOOSH_EVENT_LOOP=asyncio`
selects the standard loop (for debugging, or to compare in a benchmark).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "WHOOSH_EVENT_LOOP"


def loop_factory(allow_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default."""
    if not allow_uvloop or os.environ.get(ENV, "uvloop").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not installed on this platform (Windows): the standard loop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], allow_uvloop: bool = True) -> T:
    """`asyncio.run(main)` on the chosen loop. `allow_uvloop=False` for a service whose
    work is child processes (executor-cli): uvloop spawned `true` in ~20 ms against ~2 ms
    on asyncio's loop with a pidfd watcher (measured here), and its subprocess pipes
    raise other errors than asyncio's on a child that exits before reading stdin."""
    with asyncio.Runner(loop_factory=loop_factory(allow_uvloop)) as runner:
        return runner.run(main)


def kind(allow_uvloop: bool = True) -> str:
    """The loop this process would run on, for start-up banners."""
    return "asyncio" if loop_factory(allow_uvloop) is None else "uvloop"
