"""Retrying a submit safely: every `whoosh task submit` carries an idempotency key, so
sending it again after "the coordinator did not answer" (a 503, a bus timeout, a
coordinator restarting) returns the task the first send may have created instead of a
second one. Retries stop at a deadline so a fleet that stays down still ends in an error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from whoosh_cli.output import notice

RETRY_FOR_S = 60.0  # long enough for a coordinator to be restarted by its supervisor
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.25, 2.0
ResultT = TypeVar("ResultT")


def new_key() -> str:
    """One key per `whoosh task submit` invocation."""
    return f"cli-{uuid.uuid4()}"


async def with_retries(
    attempt: Callable[[], Awaitable[ResultT]],
    retryable: Callable[[Exception], bool],
    what: str,
    retry_for_s: float = RETRY_FOR_S,
) -> ResultT:
    """`attempt()` until it returns; errors `retryable` accepts are retried with backoff
    until `retry_for_s` has passed, then the last one is raised."""
    deadline = time.monotonic() + retry_for_s
    pause = FIRST_PAUSE_S
    told = False
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not retryable(exc) or time.monotonic() + pause > deadline:
                raise
            if not told:
                notice(f"whoosh: {what}: {exc}; retrying with the same idempotency key")
                told = True
        await asyncio.sleep(pause)
        pause = min(LONGEST_PAUSE_S, pause * 2)
