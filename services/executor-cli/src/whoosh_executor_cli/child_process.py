"""Starting a child process with asyncio pipes, on any event loop, as cheaply as the OS allows.

asyncio's `create_subprocess_exec` was the larger part of running a short command: its
transport waits for a child watcher to report the exit (a thread per child on Python 3.11
unless a pidfd watcher is installed), and uvloop's spawns with a full `fork()` of the
executor (about 20 ms, measured here) instead of CPython's `vfork()`. Here the child is
started by `subprocess.Popen` (vfork + exec, in a new session), its pipes are connected to
the running loop as streams, and its exit is seen through a pidfd (Linux 5.3+; elsewhere
by polling) and reaped by this process, so no child watcher is involved and the executor
can run on uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

POLL_FIRST_S = 0.001
POLL_MAX_S = 0.25


@dataclass
class Child:
    """A started child: its pipes as asyncio streams, and its exit."""

    popen: subprocess.Popen[bytes]
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader
    transports: list[asyncio.BaseTransport] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    async def exited(self) -> int:
        """The exit status, as soon as the process itself has exited (descendants holding
        its pipes do not delay it; that is why this does not wait for the pipes)."""
        if self.popen.poll() is None:
            await _pidfd_exit(self.pid)
        interval = POLL_FIRST_S
        while self.popen.poll() is None:  # no pidfd here: poll, backing off
            await asyncio.sleep(interval)
            interval = min(interval * 2, POLL_MAX_S)
        return self.popen.returncode

    def close_pipes(self) -> None:
        """Give up on pipes held open by a process that left the group (its own setsid)."""
        for transport in self.transports:
            transport.close()


async def spawn(argv: Sequence[str], cwd: str | None, env: Mapping[str, str]) -> Child:
    """Start `argv` in a new session (its pid is its process group) with piped stdin,
    stdout and stderr. Raises OSError when it cannot be started (not found, no
    permission, no such working directory)."""
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    assert popen.stdin and popen.stdout and popen.stderr
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    try:
        stdout = await _reader(loop, popen.stdout, transports)
        stderr = await _reader(loop, popen.stderr, transports)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
        )
        transports.append(transport)
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
    except BaseException:
        for transport in transports:
            transport.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
        raise
    return Child(popen, stdin, stdout, stderr, transports)


async def _reader(
    loop: asyncio.AbstractEventLoop, pipe: IO[bytes], transports: list[asyncio.BaseTransport]
) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    transports.append(transport)
    return reader


async def _pidfd_exit(pid: int) -> None:
    """Wait until `pid` exits, if this platform can say so without polling."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or the process is already gone
        return
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    try:
        loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)
