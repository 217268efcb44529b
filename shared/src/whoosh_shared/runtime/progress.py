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
DEFAULT_COALESCE_S = 0.02
"""Tokens after the first are gathered and published at most this often (one bus message,
one gateway validation and one WebSocket frame per 20 ms instead of per token)."""


class ProgressPublisher:
    """One per executor: a bounded queue of lines and the task that publishes them."""

    def __init__(self, nc: Client, max_queued: int = DEFAULT_QUEUE_LINES) -> None:
        self._nc = nc
        self._queue: asyncio.Queue[tuple[str, bytes] | asyncio.Future[None]] = asyncio.Queue(
            max_queued
        )
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

    async def flushed(self, timeout: float = 2.0) -> None:
        """Wait until every line put so far has been handed to NATS (in order, on this
        connection), so a report sent next cannot overtake an attempt's last tokens.
        Bounded: live output is best effort and must never hold a report back for long."""
        if self._task is None:
            return
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(marker)
        except asyncio.QueueFull:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(marker), timeout)

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
            entry = await self._queue.get()
            if isinstance(entry, asyncio.Future):
                if not entry.done():
                    entry.set_result(None)
                self._queue.task_done()
                continue
            subject, data = entry
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


class TokenCoalescer:
    """An attempt's token chunks as few progress lines: the first chunk goes out at once,
    later ones are gathered and published together at most every `interval_s`.

    Nothing is dropped or reordered here: each published line is the concatenation, in
    order, of the chunks since the previous one, and `flush()` (at the end of the call)
    sends what is left. While `held` (the attempt is not yet claimed from the
    coordinator), chunks are kept, and `release()` sends them at once."""

    def __init__(
        self, lines: AttemptLines, interval_s: float = DEFAULT_COALESCE_S, held: bool = False
    ) -> None:
        self._lines = lines
        self._interval = interval_s
        self._held = held
        self._stream = ""
        self._pending: list[str] = []
        self._last = float("-inf")  # loop time of the last line sent
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, stream: str, chunk: str) -> None:
        if self._pending and stream != self._stream:
            self.flush()  # another stream: what was gathered goes first
        self._stream = stream
        self._pending.append(chunk)
        if self._held or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self._interval - loop.time()
        if wait <= 0:
            self.flush()
        else:
            self._timer = loop.call_later(wait, self.flush)

    def release(self) -> None:
        """The attempt is ours: send what was kept, and from now on as usual."""
        self._held = False
        self.flush()

    def discard(self) -> None:
        """The attempt is not ours (its claim was refused): nothing of it is sent."""
        self._cancel_timer()
        self._pending.clear()

    def flush(self) -> None:
        """Send what is gathered now, as one line (unless held)."""
        self._cancel_timer()
        if self._held or not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._last = asyncio.get_running_loop().time()
        self._lines(self._stream, text)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
