"""Live output lines onto core NATS, without ever slowing the command that prints them.

Lines are ephemeral (whoever listens now sees them; nothing stores them), so the
pipe reader only drops a line into a bounded queue and one task publishes. If
the bus falls behind a command printing flat out, lines are dropped and counted
rather than letting memory grow or the command block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from nats.aio.client import Client

from whoosh_shared.contract import subjects
from whoosh_shared.contract.work import ProgressLine

log = logging.getLogger(__name__)

DEFAULT_QUEUE_LINES = 10_000


class ProgressPublisher:
    """One per executor: a bounded queue of lines and the task that publishes them."""

    def __init__(self, nc: Client, max_queued: int = DEFAULT_QUEUE_LINES) -> None:
        self._nc = nc
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._publish_loop(), name="progress-publisher")

    def sink(self, task_id: UUID, attempt: int) -> AttemptLines:
        """A line sink for one attempt, numbering its lines."""
        return AttemptLines(self, task_id, attempt)

    def put(self, line: ProgressLine) -> None:
        try:
            self._queue.put_nowait((subjects.progress(str(line.task_id)), _encode(line)))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("live output falling behind: %d lines dropped", self.dropped)

    async def close(self, timeout: float = 2.0) -> None:
        """Publish what is queued (within `timeout`), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _publish_loop(self) -> None:
        while True:
            subject, data = await self._queue.get()
            try:
                await self._nc.publish(subject, data)
            except Exception as exc:  # lines are best effort; the run goes on
                log.debug("progress line not published: %s", exc)
            finally:
                self._queue.task_done()


class AttemptLines:
    """The (stream, line) sink handed to a running process for one attempt."""

    def __init__(self, publisher: ProgressPublisher, task_id: UUID, attempt: int) -> None:
        self._publisher = publisher
        self._task_id = task_id
        self._attempt = attempt
        self.seq = 0

    def __call__(self, stream: str, line: str) -> None:
        self.seq += 1
        self._publisher.put(
            ProgressLine(
                task_id=self._task_id, attempt=self._attempt, seq=self.seq, stream=stream, line=line
            )
        )


def _encode(line: ProgressLine) -> bytes:
    return line.model_dump_json().encode()
