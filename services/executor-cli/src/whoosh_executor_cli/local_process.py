"""Running one command as a local process group, streaming its output, and killing it cleanly.

This is the part of the executor that touches the operating system; it knows
nothing of NATS, so it can be tested (and reused by other transports) on its own.

Why a process group: CLI agents start helpers (shells, language servers, build
tools). Killing only the direct child would leave those running, holding files,
ports and GPU memory. Each command runs in a new session (`start_new_session`),
so its pid is also the id of a group holding every descendant that did not
deliberately leave it, and signals go to the whole group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from whoosh_shared.contract.agent_env import EnvReferenceError, child_environ
from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS

from whoosh_executor_cli.child_process import Child, PipeReader, PipeWriter, spawn
from whoosh_executor_cli.output import DEFAULT_STDERR_TAIL, LineSplitter, OutputTail, StderrTail
from whoosh_executor_cli.run_result import Outcome, RunResult  # also imported from here

log = logging.getLogger(__name__)

READ_CHUNK = 65_536
GROUP_POLL_S = 0.05
# After the command itself exits, how long its pipes may stay open (a descendant still
# writing) before the rest of its group is killed so the run can end.
PIPE_DRAIN_S = 1.0
# Bound on waiting for pipes after the group is dead: a descendant that escaped the group
# (its own setsid) may hold them open forever.
PIPE_ABANDON_S = 2.0
# Lines a held run may write before its release that are passed on as progress then.
MAX_HELD_LINES = 1_000

LineSink = Callable[[str, str], None]
"""Called with (stream, line) for each output line; stream is "stdout" or "stderr"."""


class GroupWatch(Protocol):
    """Told of each command's process group while it runs (group_reaper.GroupReaper)."""

    def watch(self, pgid: int) -> None: ...

    def forget(self, pgid: int) -> None: ...


def group_exists(pgid: int) -> bool:
    """Whether a live process is still in process group `pgid`.

    Zombies do not count: a descendant orphaned by the kill is reparented to
    init, and some inits (container ones especially) reap late or never, which
    would otherwise make every kill wait out its full grace period.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_member_in_proc(pgid)


def _live_member_in_proc(pgid: int) -> bool:
    """Scan /proc for a non-zombie member of the group (True where /proc cannot tell)."""
    try:
        entries = os.scandir("/proc")
    except OSError:
        return True
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                    stat = stat_file.read()
            except OSError:
                continue  # exited while we looked
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
    return False


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send `sig` to a process group; False if the group is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


async def kill_process_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the group, give it `grace_s` to exit, then SIGKILL whatever is left.

    The TERM lets an agent save its state or clean up; the KILL makes sure that a
    descendant that ignores TERM cannot keep the run alive.
    """
    if not signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_exists(pgid):
            return
        await asyncio.sleep(GROUP_POLL_S)
    if signal_group(pgid, signal.SIGKILL):
        log.debug("process group %d did not stop on SIGTERM; sent SIGKILL", pgid)


class LocalProcess:
    """One run of a command: prompt on stdin, lines out as they come, timeout and cancel.

    `run` may be called once. `cancel` may be called at any time from the same
    event loop, before or during the run; a run cancelled before it started never
    starts the command.

    `held=True` starts the command without its input: the prompt is written, and the
    output lines are passed on, only after `release()`. The executor uses this to start
    the process while its claim (StartTask) is on the way; a command that takes its work
    from stdin cannot act on a task whose claim is then refused (it is killed instead).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdin_text: str = "",
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        kill_grace_s: float = 2.0,
        on_line: LineSink | None = None,
        output_limit: int = MAX_OUTPUT_CHARS,
        output_head: int = 0,
        stderr_limit: int = DEFAULT_STDERR_TAIL,
        held: bool = False,
        groups: GroupWatch | None = None,
    ) -> None:
        if not argv:
            raise ValueError("empty command")
        self.argv = list(argv)
        self.stdin_text = stdin_text
        self.workdir = os.path.expanduser(workdir) if workdir else None
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.on_line = on_line
        self.pid: int | None = None
        self.lines = 0
        self._stdout = OutputTail(output_limit, output_head)
        self._stderr = StderrTail(stderr_limit)
        self._last_stderr = ""
        self._cancel = asyncio.Event()
        self._cancel_reason: str | None = None
        self._ran = False
        self.held = held
        self.groups = groups
        self._released = asyncio.Event()
        self._held_lines: list[tuple[str, str]] = []
        if not held:
            self._released.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def release(self) -> None:
        """Give a held run its input, and pass on the lines it wrote meanwhile."""
        if self._released.is_set():
            return
        self._released.set()
        held, self._held_lines = self._held_lines, []
        for stream, line in held:
            self._pass_on(stream, line)

    def cancel(self, reason: str) -> None:
        """Ask the run to stop: its process group is killed (TERM, grace, KILL)."""
        if not self._cancel.is_set():
            self._cancel_reason = reason
            self._cancel.set()

    async def run(self) -> RunResult:
        if self._ran:
            raise RuntimeError("a LocalProcess runs once")
        self._ran = True
        if self._cancel.is_set():
            return self._result(Outcome.CANCELLED, None, 0.0)
        started = time.monotonic()
        try:  # never WHOOSH's own settings; ${NAME} from the executor's environment
            environ = child_environ(self.env, os.environ)
        except EnvReferenceError as exc:
            return self._result(Outcome.START_FAILED, None, 0.0, error=str(exc))
        try:
            proc = await spawn(self.argv, self.workdir, environ)
        except OSError as exc:
            return self._result(Outcome.START_FAILED, None, 0.0, error=self._start_error(exc))
        self.pid = proc.pid
        if self.groups is not None:
            self.groups.watch(proc.pid)
        try:
            return await self._supervise(proc, started)
        except asyncio.CancelledError:
            # The caller is going away (executor shutting down hard): leave nothing behind.
            signal_group(proc.pid, signal.SIGKILL)
            raise
        finally:
            if self.groups is not None:
                self.groups.forget(proc.pid)

    async def _supervise(self, proc: Child, started: float) -> RunResult:
        feeder = asyncio.create_task(self._feed_stdin(proc.stdin))
        readers = [
            asyncio.create_task(self._pump(proc.stdout, "stdout")),
            asyncio.create_task(self._pump(proc.stderr, "stderr")),
        ]
        exited = asyncio.create_task(proc.exited())
        cancelled = asyncio.create_task(self._cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, cancelled}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                outcome = Outcome.EXITED
                # Descendants may still hold the pipes; give them a moment to finish writing.
                await asyncio.wait(readers, timeout=PIPE_DRAIN_S)
            else:
                outcome = Outcome.CANCELLED if cancelled in done else Outcome.TIMED_OUT
            # Whatever is left of the group goes: on timeout or cancel the command itself,
            # after a normal exit any helper it left running.
            await kill_process_group(proc.pid, self.kill_grace_s)
            await proc.exited()
            duration = time.monotonic() - started
            _, pending = await asyncio.wait(readers, timeout=PIPE_ABANDON_S)
            if pending:
                log.warning("pid %d: a process outside its group still holds its output", proc.pid)
                proc.close_pipes()
        finally:
            for task in (feeder, exited, cancelled, *readers):
                if not task.done():
                    task.cancel()
            await asyncio.gather(feeder, exited, cancelled, *readers, return_exceptions=True)
            proc.close_pipes()  # whatever is still open, on every way out (closed once)
        return self._result(outcome, proc.returncode, duration)

    async def _feed_stdin(self, stdin: PipeWriter) -> None:
        """Write the prompt and close stdin, so the command sees end of input."""
        try:
            await self._released.wait()
            if self.stdin_text:
                await stdin.write(self.stdin_text.encode())
        except BrokenPipeError:
            pass  # the command does not read its input; that is its business
        finally:
            stdin.close()

    async def _pump(self, reader: PipeReader, stream: str) -> None:
        splitter = LineSplitter()
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                break
            text = splitter.decode(data)
            if stream == "stdout":
                self._stdout.append(text)
            self._emit(stream, splitter.lines())
        text, rest = splitter.finish()
        if stream == "stdout":
            self._stdout.append(text)
        self._emit(stream, rest)

    def _emit(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            self.lines += 1
            if stream == "stderr":
                self._stderr.add(line)
                if line.strip():
                    self._last_stderr = line.strip()
            if not self._released.is_set():
                if len(self._held_lines) < MAX_HELD_LINES:  # the output keeps them all
                    self._held_lines.append((stream, line))
            else:
                self._pass_on(stream, line)

    def _pass_on(self, stream: str, line: str) -> None:
        if self.on_line is not None:
            try:
                self.on_line(stream, line)
            except Exception:  # a broken sink must not stop the pipe (and block the child)
                log.exception("output line handler failed")

    def _start_error(self, exc: OSError) -> str:
        what = exc.strerror or exc.__class__.__name__
        where = f" in {self.workdir}" if self.workdir else ""
        detail = f" ({exc.filename})" if exc.filename and exc.filename != self.argv[0] else ""
        return f"cannot start {shlex.join(self.argv)!r}{where}: {what}{detail}"

    def _result(
        self, outcome: Outcome, exit_code: int | None, duration: float, error: str | None = None
    ) -> RunResult:
        return RunResult(
            outcome=outcome,
            exit_code=exit_code,
            output=self._stdout.text(),
            output_truncated=self._stdout.truncated,
            last_stderr_line=self._last_stderr,
            stderr=self._stderr.text(),
            duration_s=duration,
            lines=self.lines,
            pid=self.pid,
            error=error,
            cancel_reason=self._cancel_reason if outcome is Outcome.CANCELLED else None,
        )
