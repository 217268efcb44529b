"""A running LLM call seen as an async iterator of text chunks, with its usage at the end.

Both protocol clients return an `LlmStream`. Each text chunk is what the executor will
publish as ephemeral progress; `usage` is set once the stream ended normally. The HTTP
response lives inside an `async with session.post(...)` in the producing generator, so
cancelling the consuming task (or leaving `async with llm_stream:` early) releases it with
its body unread, which closes the connection at once: the server sees the client go away
and stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

import aiohttp

from whoosh_executor_ollama.usage import LlmUsage


class ClosedOnExit(ABC):
    """Closed (`aclose`) when the `async with` block around it ends, however it ends: for
    a stream and a client alike, closing is what lets go of their connections."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LlmStream(ClosedOnExit, AsyncIterator[str]):
    """Text chunks in order; afterwards `text`, `usage` and any `tool_calls`."""

    def __init__(self, produce: Callable[[LlmStream], AsyncGenerator[str, None]]) -> None:
        self.usage: LlmUsage | None = None
        self.tool_calls: list[dict[str, Any]] = []
        self._parts: list[str] = []
        self._gen = produce(self)

    @property
    def text(self) -> str:
        """All text received so far."""
        return "".join(self._parts)

    def __aiter__(self) -> LlmStream:
        return self

    async def __anext__(self) -> str:
        chunk = await self._gen.__anext__()
        self._parts.append(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop the call and close its connection (safe to call twice)."""
        await self._gen.aclose()

    async def collect(self) -> tuple[str, LlmUsage]:
        """Run to the end; the whole text and the usage."""
        async with self:
            async for _ in self:
                pass
        assert self.usage is not None  # set by the producer before it returns normally
        return self.text, self.usage


async def response_lines(response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
    """The body's lines as they arrive (each as soon as its line ending is in), without
    their endings (LF, CRLF or CR), decoded as UTF-8 with bad bytes replaced.

    A CRLF split between two reads gives one empty line more, which both protocols skip.
    Unlike aiohttp's own `readline` there is no cap on a line's length (a final chunk
    with large tool calls is one line). A transport failure (reset, cut, read timeout)
    is raised as aiohttp raises it."""
    content = response.content
    pending = b""
    while data := await content.readany():
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if pending:
            data = pending + data
        *lines, pending = data.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


DRAIN_TIMEOUT_S = 1.0


async def drain(lines: AsyncIterator[str], timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Read a response to its end after its last chunk (`done`, `[DONE]`).

    Releasing a response with its body unread closes the connection instead of
    returning it to the pool: every call then paid a new TCP connection (measured: one
    connect per task at 64 in flight). What is left is at most the chunked terminator;
    a server that keeps the response open past its last chunk costs `timeout_s` at
    most, and then the connection is closed as before."""
    with contextlib.suppress(TimeoutError, Exception):
        async with asyncio.timeout(timeout_s):
            async for _ in lines:
                pass
