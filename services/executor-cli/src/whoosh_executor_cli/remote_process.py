"""One run of an agent's command on a remote host over SSH, with LocalProcess's interface.

The attempt handler cannot tell the two apart: `run()` returns the same RunResult,
`cancel(reason)` stops the run, `lines` counts output lines, and lines go to `on_line`
as they arrive. What differs is how a run is stopped: the command runs under the
wrapper of `remote_wrapper` (which reports its pid first and dies at its deadline on
its own), and a kill (cancel, timeout, shutdown) is a short command on another
channel, or another connection, that TERMs the run's whole session on the host,
waits the grace and KILLs what is left. So a kill works even when the channel that
started the run is gone.

The task's timeout counts from `run()`: waiting for a channel (a host at its limit,
a connection being made) is part of the time the task was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine, Mapping, Sequence

import asyncssh
from whoosh_shared.contract.agent_env import EnvReferenceError, resolve_env
from whoosh_shared.contract.agents import SshTarget
from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS

from whoosh_executor_cli.local_process import PIPE_ABANDON_S, PIPE_DRAIN_S, LineSink
from whoosh_executor_cli.output import DEFAULT_STDERR_TAIL, StreamCollector
from whoosh_executor_cli.remote_wrapper import (
    CANNOT_START_EXIT,
    PidLine,
    env_lines,
    kill_command,
    parse_cannot_start,
    parse_pid_line,
    run_command,
)
from whoosh_executor_cli.run_result import Outcome, RunResult
from whoosh_executor_cli.ssh_client import RemoteChannel, SshPool
from whoosh_executor_cli.ssh_failures import SshFailure

log = logging.getLogger(__name__)

# The host's own deadline trails the executor's by this much, so the executor's kill
# (which reports "timed out") normally comes first; the host's is the net under it.
REMOTE_DEADLINE_MARGIN_S = 1.0
# How long a kill waits for the run's pid line when asked before it arrived.
PID_WAIT_S = 5.0
# Bound on the kill command itself, beyond the grace it waits on the host.
KILL_SLACK_S = 5.0
TIMEOUT_EXIT = 124  # what `timeout` exits with when the deadline struck


_detached: set[asyncio.Task[object]] = set()


def _detach(coro: Coroutine[object, object, object]) -> None:
    """Run `coro` to its end without an owner (kept referenced until then)."""
    task = asyncio.ensure_future(coro)
    _detached.add(task)
    task.add_done_callback(_detached.discard)


class _Session(asyncssh.SSHClientSession[bytes]):
    """Receives a run's channel events and hands them to its RemoteProcess."""

    def __init__(self, run: RemoteProcess) -> None:
        self.run = run

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        stream = "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"
        self.run._output.feed(stream, data)

    def exit_status_received(self, status: int) -> None:
        self.run._exited(status)

    def exit_signal_received(
        self, signal_name: str, core_dumped: bool, msg: str, lang: str
    ) -> None:
        try:
            number = signal.Signals[f"SIG{signal_name}"].value
        except KeyError:
            number = 255
        self.run._exited(-number)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run._closed(exc)


class RemoteProcess:
    """One run of a command on `target`: prompt on stdin, lines out, timeout and cancel.

    `run` may be called once; `cancel` at any time from the same event loop.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        target: SshTarget,
        pool: SshPool,
        agent: str = "",
        max_concurrent: int = 1024,
        stdin_text: str = "",
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        kill_grace_s: float = 2.0,
        on_line: LineSink | None = None,
        output_limit: int = MAX_OUTPUT_CHARS,
        output_head: int = 0,
        stderr_limit: int = DEFAULT_STDERR_TAIL,
    ) -> None:
        if not argv:
            raise ValueError("empty command")
        self.argv = list(argv)
        self.target = target
        self.pool = pool
        self.agent = agent or target.label
        self.max_concurrent = max_concurrent
        self.stdin_text = stdin_text
        self.workdir = workdir
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.pid: int | None = None
        self._output = StreamCollector(
            on_line,
            output_limit=output_limit,
            output_head=output_head,
            stderr_limit=stderr_limit,
            keep=self._keep_line,
        )
        self._pid_line: PidLine | None = None
        self._pid_known = asyncio.Event()
        self._cannot_start: str | None = None
        self._exit_code: int | None = None
        self._exit = asyncio.Event()
        self._close = asyncio.Event()
        self._close_error: Exception | None = None
        self._cancel = asyncio.Event()
        self._cancel_reason: str | None = None
        self._ran = False

    @property
    def lines(self) -> int:
        return self._output.lines

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self, reason: str) -> None:
        """Ask the run to stop: its session on the host is killed (TERM, grace, KILL)."""
        if not self._cancel.is_set():
            self._cancel_reason = reason
            self._cancel.set()

    async def run(self) -> RunResult:
        if self._ran:
            raise RuntimeError("a RemoteProcess runs once")
        self._ran = True
        started = time.monotonic()
        if self._cancel.is_set():
            return self._result(Outcome.CANCELLED, started)
        try:  # ${NAME} from this executor's environment; only the agent's env is sent
            self.env = resolve_env(self.env, os.environ)
        except EnvReferenceError as exc:
            return self._result(Outcome.START_FAILED, started, error=str(exc))
        async with contextlib.AsyncExitStack() as stack:
            outcome = await self._get_slot_and_channel(stack, started)
            if isinstance(outcome, RunResult):
                return outcome
            try:
                return await self._supervise(outcome, started)
            except asyncio.CancelledError:
                # The caller is going away (a hard stop): leave the kill running behind it.
                if self._pid_line is not None and not self._close.is_set():
                    _detach(self._send_kill(self._pid_line))
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- starting ------------------------------------------------------------------------

    async def _get_slot_and_channel(
        self, stack: contextlib.AsyncExitStack, started: float
    ) -> RemoteChannel | RunResult:
        """A channel running the wrapped command, or the result if none came in time."""

        async def open_channel() -> RemoteChannel:
            await stack.enter_async_context(self.pool.agent_slot(self.agent, self.max_concurrent))
            remaining = self._remaining(started)
            deadline = None if remaining is None else remaining + REMOTE_DEADLINE_MARGIN_S
            command = run_command(
                self.argv,
                deadline_s=deadline,
                grace_s=self.kill_grace_s,
                workdir=self.workdir,
                env=self.env,
            )
            return await self.pool.open_session(self.target, lambda: _Session(self), command)

        opening = asyncio.create_task(open_channel())
        cancelled = asyncio.create_task(self._cancel.wait())
        try:
            await asyncio.wait(
                {opening, cancelled},
                timeout=self._remaining(started),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            cancelled.cancel()
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                channel = await opening
                channel.channel.close()  # opened in the very last moment
                channel.lease.release()
            outcome = Outcome.CANCELLED if self._cancel.is_set() else Outcome.TIMED_OUT
            return self._result(outcome, started)
        try:
            channel = opening.result()
        except SshFailure as exc:
            outcome = Outcome.TRANSPORT_FAILED if exc.cause.retryable else Outcome.START_FAILED
            return self._result(outcome, started, error=exc.message)
        except Exception as exc:  # the pool closing at shutdown, or an SSH error unforeseen
            if self._cancel.is_set():
                return self._result(Outcome.CANCELLED, started)
            error = f"ssh: cannot run on {self.target.label}: {exc or type(exc).__name__}"
            return self._result(Outcome.TRANSPORT_FAILED, started, error=error)
        stack.callback(channel.lease.release)
        stack.callback(channel.channel.close)
        return channel

    # -- running -------------------------------------------------------------------------

    async def _supervise(self, remote: RemoteChannel, started: float) -> RunResult:
        try:
            remote.channel.write(env_lines(self.env))  # never on the command line
            remote.channel.write(self.stdin_text.encode())
            remote.channel.write_eof()
        except OSError:
            pass  # the command ended (or the channel closed) before reading: its business
        waits = {
            "exited": asyncio.create_task(self._exit.wait()),
            "closed": asyncio.create_task(self._close.wait()),
            "cancelled": asyncio.create_task(self._cancel.wait()),
        }
        try:
            done, _ = await asyncio.wait(
                waits.values(),
                timeout=self._remaining(started),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in waits.values():
                task.cancel()
        if waits["exited"] in done:
            return await self._after_exit(remote, started)
        if waits["closed"] in done:
            return await self._after_loss(started)
        outcome = Outcome.CANCELLED if waits["cancelled"] in done else Outcome.TIMED_OUT
        await self._kill(remote)
        return self._result(outcome, started)

    async def _after_exit(self, remote: RemoteChannel, started: float) -> RunResult:
        """The command exited: let its output finish, kill helpers that hold it open."""
        if not await self._wait_closed(PIPE_DRAIN_S):
            await self._kill(remote)
        duration = time.monotonic() - started
        if self._cannot_start is not None and self._exit_code == CANNOT_START_EXIT:
            error = f"cannot start {self.argv[0]!r} on {self.target.label}: {self._cannot_start}"
            return self._result(Outcome.START_FAILED, started, error=error, duration=duration)
        if (
            self._exit_code == TIMEOUT_EXIT
            and self.timeout_s is not None
            and duration >= self.timeout_s
        ):
            return self._result(Outcome.TIMED_OUT, started, duration=duration)
        return self._result(Outcome.EXITED, started, duration=duration)

    async def _after_loss(self, started: float) -> RunResult:
        """The channel closed with no exit status: the connection (or the server) is gone.

        The command may still run on the host. Try, over a new connection, to kill it,
        so a retry elsewhere does not run beside it; if the host cannot be reached, its
        own deadline stops it.
        """
        why = self._close_error or "the channel closed without an exit status"
        reason = f"ssh connection to {self.target.label} lost while the command ran ({why})"
        if self._pid_line is not None:
            if await self._send_kill(self._pid_line):
                reason += "; the remote command was killed"
            else:
                reason += "; the remote command could not be reached to kill it"
                if self.timeout_s is not None:
                    reason += " and stops at its deadline"
        return self._result(Outcome.TRANSPORT_FAILED, started, error=reason)

    async def _kill(self, remote: RemoteChannel) -> None:
        """Stop the run on the host and wait (bounded) for its channel to close."""
        if self._pid_line is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pid_known.wait(), PID_WAIT_S)
        if self._pid_line is None or not await self._send_kill(self._pid_line):
            log.warning(
                "could not kill the remote command; closing its channel",
                extra={"host": self.target.label, "remote_pid": self.pid},
            )
            remote.channel.close()
        await self._wait_closed(self.kill_grace_s + PIPE_ABANDON_S)

    async def _send_kill(self, run: PidLine) -> bool:
        """TERM, grace, KILL the run's session on the host; False if the host was not reached."""
        limit = self.kill_grace_s + KILL_SLACK_S
        try:
            async with asyncio.timeout(limit + self.target.settings.connect_timeout_s):
                result = await self.pool.run_short(
                    self.target, kill_command(run, self.kill_grace_s), timeout_s=limit
                )
        except (SshFailure, asyncssh.Error, OSError, TimeoutError) as exc:
            log.warning("remote kill failed: %s", exc, extra={"host": self.target.label})
            return False
        return result.exit_status == 0

    async def _wait_closed(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._close.wait(), timeout)
        return self._close.is_set()

    # -- channel events ------------------------------------------------------------------

    def _keep_line(self, stream: str, line: str) -> bool:
        """Take the wrapper's own stderr lines out of the command's output."""
        if stream != "stderr":
            return True
        if self._pid_line is None and (parsed := parse_pid_line(line)) is not None:
            self._pid_line = parsed
            self.pid = parsed.pid
            self._pid_known.set()
            return False
        if (why := parse_cannot_start(line)) is not None:
            self._cannot_start = why
            return False
        return True

    def _exited(self, code: int) -> None:
        self._exit_code = code
        self._exit.set()

    def _closed(self, exc: Exception | None) -> None:
        if not self._close.is_set():
            self._output.finish()
        self._close_error = exc
        self._close.set()

    # -- results -------------------------------------------------------------------------

    def _remaining(self, started: float) -> float | None:
        if self.timeout_s is None:
            return None
        return max(self.timeout_s - (time.monotonic() - started), 0.0)

    def _result(
        self,
        outcome: Outcome,
        started: float,
        *,
        error: str | None = None,
        duration: float | None = None,
    ) -> RunResult:
        return RunResult(
            outcome=outcome,
            exit_code=self._exit_code,
            output=self._output.stdout.text(),
            output_truncated=self._output.stdout.truncated,
            last_stderr_line=self._output.last_stderr,
            stderr=self._output.stderr.text(),
            duration_s=time.monotonic() - started if duration is None else duration,
            lines=self._output.lines,
            pid=self.pid,
            error=error,
            cancel_reason=self._cancel_reason if outcome is Outcome.CANCELLED else None,
        )
