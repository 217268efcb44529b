"""Handling one work message: start the task, run its command, report, then (only then) ack.

The envelope (read, claim with StartTask, keep the message alive, settle) is shared by
every executor (`whoosh_shared.runtime.work_message`, which says why the order makes executors
crash-safe); what is this executor's own is running the agent's command, locally or
over SSH, and judging how it went.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

import nats.errors
from nats.aio.msg import Msg
from whoosh_shared.contract.commands import CompleteTask, FailTask, ReportProgress
from whoosh_shared.contract.enums import AgentType, CliKind
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime import executor_runtime
from whoosh_shared.runtime.bus import BusError
from whoosh_shared.runtime.running_attempts import StopCause
from whoosh_shared.runtime.work_message import (
    SHUTDOWN_REDELIVERY_DELAY_S,
    claim,
    hold,
    ids,
    receive,
    settle,
)

from whoosh_executor_cli.group_reaper import GroupReaper
from whoosh_executor_cli.local_process import LineSink, LocalProcess, Outcome, RunResult
from whoosh_executor_cli.profiles import AgentRun, profile_for
from whoosh_executor_cli.remote_process import RemoteProcess
from whoosh_executor_cli.reporting import result_command
from whoosh_executor_cli.running import AttemptRun, CommandProcess
from whoosh_executor_cli.ssh_client import SshPool

log = logging.getLogger(__name__)

MILESTONE_SEND_TIMEOUT_S = 5.0
MARKER_ROOM = 64


@dataclass(kw_only=True)
class ExecutorContext(executor_runtime.ExecutorContext[AttemptRun]):
    """What every attempt on this executor shares (at shutdown, running commands are
    killed and redelivered)."""

    ssh: SshPool = field(default_factory=SshPool)
    """Connections to the hosts of remote agents, shared by every attempt."""
    reaper: GroupReaper | None = None
    """Kills the local commands' groups if this process dies without its orderly stop."""


class AttemptHandler:
    """Runs the work messages the consumer hands it, each in its own asyncio task."""

    def __init__(self, ctx: ExecutorContext) -> None:
        self.ctx = ctx

    async def handle(self, msg: Msg) -> None:
        item = await receive(msg, _serves, self.ctx.stopping, self.ctx.bus)
        if item is None:
            return
        reader = _reader_for(item)
        early = self.ctx.settings.start_before_claim and _may_start_early(
            msg, item, self.ctx.stopping
        )
        run = AttemptRun(item, self._process_for(item, reader, held=early), reader=reader)
        ack_wait_s = self.ctx.settings.ack_wait_s
        await hold(msg, self.ctx.running, run, ack_wait_s, lambda: self._start_run_report(msg, run))

    def _process_for(
        self, item: WorkItem, reader: AgentRun | None, held: bool = False
    ) -> CommandProcess:
        """The agent's command here, or on its host over SSH when it names one; a vendor
        CLI's command gets the flags of its non-interactive, machine-readable mode.
        `held`: a local command that starts before its claim is answered (LocalProcess)."""
        agent = item.agent
        sink = self.ctx.progress.sink(item.task_id, item.attempt)
        on_line = sink if reader is None else _feeding(sink, reader)
        command = agent.command if reader is None else reader.profile.build_argv(agent.command)
        grace = self.ctx.settings.kill_grace_s
        # both ends of a long output are kept, with room for the marker between them
        half = (self.ctx.limits.max_output_bytes - MARKER_ROOM) // 2
        stderr_limit = self.ctx.limits.stderr_tail_bytes
        target = agent.ssh_target()
        if target is None:
            return LocalProcess(
                command,
                stdin_text=item.prompt,
                workdir=agent.workdir,
                env=agent.env,
                timeout_s=item.timeout_s,
                kill_grace_s=grace,
                on_line=on_line,
                output_limit=half,
                output_head=half,
                stderr_limit=stderr_limit,
                held=held,
                groups=self.ctx.reaper,
            )
        return RemoteProcess(
            command,
            target=target,
            pool=self.ctx.ssh,
            agent=agent.name,
            max_concurrent=agent.max_concurrent,
            stdin_text=item.prompt,
            workdir=agent.workdir,
            env=agent.env,
            timeout_s=item.timeout_s,
            kill_grace_s=grace,
            on_line=on_line,
            output_limit=half,
            output_head=half,
            stderr_limit=stderr_limit,
        )

    async def _start_run_report(self, msg: Msg, run: AttemptRun) -> None:
        """Claim, run, report. A held local command is started before its claim is
        answered, so spawning it overlaps the coordinator's round trip; it gets its
        prompt only once the claim is accepted, and a refused claim kills it."""
        item = run.item
        claiming = asyncio.create_task(claim(self.ctx.bus, msg, item, self.ctx.executor_id))
        # One loop turn first: the StartTask is then on the wire before the spawn, which
        # holds the loop for a few hundred microseconds, instead of after it.
        await asyncio.sleep(0)
        early = self._run_early(run)
        if not await claiming:
            await _abandon(run, early)
            return
        if self.ctx.stopping.is_set():
            await _abandon(run, early)
            await settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return

        log.info("task started", extra={**ids(item), "agent": item.agent.name})
        if early is not None:
            assert isinstance(run.process, LocalProcess)
            run.process.release()
        result = await (early if early is not None else self._run(run))
        if result.outcome is Outcome.CANCELLED and run.stop_cause is StopCause.SHUTDOWN:
            log.info("task abandoned at shutdown, to be redelivered", extra=ids(item))
            await settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return

        inline, output_ref = await executor_runtime.store_output(self.ctx, result.output)
        command = result_command(
            item,
            replace(result, output=inline),
            reader=run.reader,
            coordinator_timed_out=run.stop_cause is StopCause.TIMED_OUT,
        )
        if output_ref is not None and isinstance(command, CompleteTask | FailTask):
            command = command.model_copy(update={"output_ref": output_ref})
        await executor_runtime.report_and_ack(
            self.ctx,
            msg,
            item,
            command,
            log=log,
            outcome=result.outcome.value,
            exit_code=result.exit_code,
            duration_s=round(result.duration_s, 3),
        )

    def _run_early(self, run: AttemptRun) -> asyncio.Task[RunResult] | None:
        if not (isinstance(run.process, LocalProcess) and run.process.held):
            return None
        return asyncio.create_task(self._run(run), name=f"attempt-{run.item.task_id}")

    async def _run(self, run: AttemptRun) -> RunResult:
        milestones = asyncio.create_task(self._milestones(run))
        try:
            return await run.process.run()
        finally:
            milestones.cancel()
            await asyncio.gather(milestones, return_exceptions=True)

    async def _milestones(self, run: AttemptRun) -> None:
        """Every milestone_interval_s, a stored progress milestone (sent aside of the run)."""
        interval = self.ctx.settings.milestone_interval_s
        started = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            elapsed = time.monotonic() - started
            message = f"running {elapsed:.0f}s, {run.process.lines} lines of output"
            report = ReportProgress(
                task_id=run.item.task_id, attempt=run.item.attempt, message=message
            )
            try:
                reply = await self.ctx.bus.send(
                    report, timeout=min(interval, MILESTONE_SEND_TIMEOUT_S)
                )
            except (BusError, nats.errors.Error) as exc:
                log.debug("milestone not delivered: %s", exc, extra=ids(run.item))
                continue
            if not reply.accepted:
                log.debug("milestone rejected: %s", reply.reason, extra=ids(run.item))


def _may_start_early(msg: Msg, item: WorkItem, stopping: asyncio.Event) -> bool:
    """Whether the command may start before its claim is answered: a local command, on
    the message's first delivery (a redelivered attempt may be running elsewhere, where
    a refused claim is likely), not while stopping."""
    if item.agent.ssh_target() is not None or stopping.is_set():
        return False
    try:
        return msg.metadata.num_delivered == 1
    except Exception:  # not a JetStream message (tests that hand messages in directly)
        return False


async def _abandon(run: AttemptRun, early: asyncio.Task[RunResult] | None) -> None:
    """A run started early whose claim was not accepted: it is killed, nothing reported."""
    if early is None:
        return
    run.process.cancel("the task was not started (its claim was not accepted)")
    await asyncio.gather(early, return_exceptions=True)


def _reader_for(item: WorkItem) -> AgentRun | None:
    """A reader of the agent's CLI dialect; a plain command is judged by its exit code."""
    if item.agent.cli is CliKind.GENERIC:
        return None
    return profile_for(item.agent.cli).start()


def _feeding(sink: LineSink, reader: AgentRun) -> LineSink:
    """Every line still goes out as progress; stdout lines are also read as CLI events."""

    def on_line(stream: str, line: str) -> None:
        sink(stream, line)
        if stream == "stdout":
            reader.feed(line)

    return on_line


def _serves(item: WorkItem) -> bool:
    return item.agent.type is AgentType.CLI
