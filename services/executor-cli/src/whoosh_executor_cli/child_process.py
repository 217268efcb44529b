"""Starting a child process with asyncio pipes, on any event loop, as cheaply as the OS allows.

asyncio's `create_subprocess_exec` was the larger part of running a short command: its
transport waits for a child watcher to report the exit (a thread per child on Python 3.11
unless a pidfd watcher is installed), and uvloop's spawns with a full `fork()` of the
executor (about 20 ms, measured here) instead of CPython's `vfork()`. Here the child is
started by `subprocess.Popen` (vfork + exec, in a new session) and its exit is seen through
a pidfd (Linux 5.3+; elsewhere by polling) and reaped by this process, so no child watcher
is involved and the executor can run on uvloop.

The pipes are plain descriptors read and written with the loop's reader and writer
callbacks, each closed here exactly once. Handing Popen's file objects to the loop's
pipe transports left each descriptor with two closers (on uvloop, libuv closes it and the
file object closes it again when collected; strace showed a quarter of the executor's
`close` calls failing with EBADF), and a number closed twice can by then belong to the
next child's pipe, whose output would never be read.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

POLL_FIRST_S = 0.001
POLL_MAX_S = 0.25


class PipeReader:
    """The parent's read end of a child's pipe: `read` waits with the loop's reader
    callback; the descriptor is closed once, at end of input or by `close`."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._waiter: asyncio.Future[None] | None = None

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes as soon as some are there; b"" at end of input (or closed)."""
        while self.fd >= 0:
            try:
                data = os.read(self.fd, size)
            except BlockingIOError:
                await self._readable()
                continue
            if not data:
                self.close()
            return data
        return b""

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        loop.add_reader(self.fd, _resolve, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if self.fd >= 0:
                loop.remove_reader(self.fd)

    def close(self) -> None:
        """Give the descriptor up (a read waiting on it returns b"")."""
        if self.fd < 0:
            return
        if self._waiter is not None:
            asyncio.get_running_loop().remove_reader(self.fd)
            _resolve(self._waiter)
        os.close(self.fd)
        self.fd = -1


class PipeWriter:
    """The parent's write end of the child's stdin, closed once by `close`."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd

    async def write(self, data: bytes) -> None:
        """All of `data`, as fast as the child reads it (nothing once closed). A child that
        closed its end raises BrokenPipeError."""
        view = memoryview(data)
        while view and self.fd >= 0:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                await self._writable()

    async def _writable(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        loop.add_writer(self.fd, _resolve, waiter)
        try:
            await waiter
        finally:
            loop.remove_writer(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass
class Child:
    """A started child: its pipes, and its exit."""

    popen: subprocess.Popen[bytes]
    stdin: PipeWriter
    stdout: PipeReader
    stderr: PipeReader

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
        """Give up on pipes held open by a process that left the group (its own setsid),
        and on stdin if it is still open."""
        for pipe in (self.stdin, self.stdout, self.stderr):
            pipe.close()


async def spawn(argv: Sequence[str], cwd: str | None, env: Mapping[str, str]) -> Child:
    """Start `argv` in a new session (its pid is its process group) with piped stdin,
    stdout and stderr. Raises OSError when it cannot be started (not found, no
    permission, no such working directory)."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=stdin_r,
            stdout=stdout_w,
            stderr=stderr_w,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    except BaseException:
        for fd in (stdin_w, stdout_r, stderr_r):
            os.close(fd)
        raise
    finally:
        for fd in (stdin_r, stdout_w, stderr_w):  # the child's ends: the child has them
            os.close(fd)
    return Child(popen, PipeWriter(stdin_w), PipeReader(stdout_r), PipeReader(stderr_r))


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
