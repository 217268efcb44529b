"""A TCP proxy on loopback between our clients and an Ollama double, for the transport
faults a server cannot make through ASGI: an answer delivered in small pieces (lines
split across reads), or the connection reset (RST) in the middle of a stream."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator


class FaultProxy:
    """Requests pass through as they are; answers in `piece`-byte writes a moment apart,
    or, with `reset_after`, the client's connection is reset (SO_LINGER 0, then closed)
    at the read of the answer that follows the first `reset_after` reads."""

    def __init__(
        self, target: str, *, piece: int | None = None, reset_after: int | None = None
    ) -> None:
        host, port = target.removeprefix("http://").rsplit(":", 1)
        self.target = (host, int(port))
        self.piece, self.reset_after = piece, reset_after
        self.resets = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FaultProxy]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_r, server_w = await asyncio.open_connection(*self.target)
        requests = asyncio.create_task(_pipe(client_r, server_w))
        try:
            reads = 0
            while data := await server_r.read(65536):
                reads += 1
                if self.reset_after is not None and reads > self.reset_after:
                    sock = client_w.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client_w.transport.abort()
                    self.resets += 1
                    return
                step = self.piece or len(data)
                for start in range(0, len(data), step):
                    client_w.write(data[start : start + step])
                    await client_w.drain()
                    if self.piece:
                        await asyncio.sleep(0.001)  # its own read on the client's side
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            requests.cancel()
            server_w.close()
            client_w.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
