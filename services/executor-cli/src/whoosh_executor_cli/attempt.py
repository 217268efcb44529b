"""Handling one work message: start the task, run its command, report, then (only then) ack.

The order is what makes executors crash-safe. The work message stays unacked
(kept alive with in-progress acks) until the coordinator has answered the
report, so if this process dies at any point before that, JetStream redelivers
the message to another executor after ack_wait, and the coordinator sorts out
stale attempts by their attempt number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError
from whoosh_shared.bus import Bus, BusError, send_until_answered
from whoosh_shared.commands import ReportProgress, StartTask
from whoosh_shared.config import ExecutorSettings
from whoosh_shared.enums import AgentType
from whoosh_shared.progress import ProgressPublisher
from whoosh_shared.running_attempts import RunningAttempts, StopCause
from whoosh_shared.work import WorkItem

from whoosh_executor_cli.local_process import LocalProcess, Outcome, RunResult
from whoosh_executor_cli.reporting import result_command
from whoosh_executor_cli.running import AttemptRun

log = logging.getLogger(__name__)

# Redelivery delays: set explicitly, since a NAK without one redelivers at once.
COORDINATOR_DOWN_DELAY_S = 1.0
SHUTDOWN_REDELIVERY_DELAY_S = 0.5
MILESTONE_SEND_TIMEOUT_S = 5.0


@dataclass
class ExecutorContext:
    """What every attempt on this executor shares."""

    bus: Bus
    executor_id: str
    settings: ExecutorSettings
    progress: ProgressPublisher
    running: RunningAttempts[AttemptRun] = field(default_factory=RunningAttempts)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at shutdown: start nothing new; running commands are killed and redelivered."""
    abandon_reports: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when shutdown can wait no longer for unanswered reports."""


class AttemptHandler:
    """Runs the work messages the consumer hands it, each in its own asyncio task."""

    def __init__(self, ctx: ExecutorContext) -> None:
        self.ctx = ctx

    async def handle(self, msg: Msg) -> None:
        try:
            item = WorkItem.model_validate_json(msg.data)
        except ValidationError as exc:
            log.error("dropping an invalid work message on %s: %s", msg.subject, _brief(exc))
            await _settle(msg.term())
            return
        if item.agent.type is not AgentType.CLI:
            log.error("dropping work for a %s agent on %s", item.agent.type.value, msg.subject)
            await _settle(msg.term())
            return
        if self.ctx.stopping.is_set():
            await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return
        run = AttemptRun(item, self._process_for(item))
        if not self.ctx.running.add(run):
            # A redelivered copy of an attempt still running here (its in-progress acks
            # did not reach the server in time). The running copy will ack it.
            log.warning("attempt already running here; ignoring the copy", extra=_ids(item))
            return
        keepalive = asyncio.create_task(self._keep_message(msg))
        try:
            await self._start_run_report(msg, run)
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)
            self.ctx.running.remove(run)

    def _process_for(self, item: WorkItem) -> LocalProcess:
        return LocalProcess(
            item.agent.command,
            stdin_text=item.prompt,
            workdir=item.agent.workdir,
            env=item.agent.env,
            timeout_s=item.timeout_s,
            kill_grace_s=self.ctx.settings.kill_grace_s,
            on_line=self.ctx.progress.sink(item.task_id, item.attempt),
        )

    async def _start_run_report(self, msg: Msg, run: AttemptRun) -> None:
        item = run.item
        start = StartTask(
            task_id=item.task_id, attempt=item.attempt, executor_id=self.ctx.executor_id
        )
        try:
            reply = await self.ctx.bus.send(start)
        except (BusError, nats.errors.Error) as exc:
            log.warning("cannot start task, will retry: %s", exc, extra=_ids(item))
            await _settle(msg.nak(delay=COORDINATOR_DOWN_DELAY_S))
            return
        if not reply.accepted:
            log.info("task not started: %s", reply.reason, extra=_ids(item))
            await _settle(msg.ack())
            return
        if self.ctx.stopping.is_set():
            await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return

        log.info("task started", extra={**_ids(item), "agent": item.agent.name})
        result = await self._run(run)
        if result.outcome is Outcome.CANCELLED and run.stop_cause is StopCause.SHUTDOWN:
            log.info("task abandoned at shutdown, to be redelivered", extra=_ids(item))
            await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return

        command = result_command(
            item, result, coordinator_timed_out=run.stop_cause is StopCause.TIMED_OUT
        )
        reply = await send_until_answered(self.ctx.bus, command, self.ctx.abandon_reports)
        if reply is None:
            log.warning("report unanswered at shutdown; work will be redelivered", extra=_ids(item))
            return
        await _settle(msg.ack())
        log.info(
            "task finished",
            extra={
                **_ids(item),
                "result": type(command).__name__,
                "outcome": result.outcome.value,
                "exit_code": result.exit_code,
                "duration_s": round(result.duration_s, 3),
                "reply": reply.status if reply.accepted else f"rejected: {reply.reason}",
            },
        )

    async def _run(self, run: AttemptRun) -> RunResult:
        milestones = asyncio.create_task(self._milestones(run))
        try:
            return await run.process.run()
        finally:
            milestones.cancel()
            await asyncio.gather(milestones, return_exceptions=True)

    async def _keep_message(self, msg: Msg) -> None:
        """Tell JetStream the work is still in hand, so ack_wait never runs out on a long task."""
        interval = self.ctx.settings.ack_wait_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
            except Exception as exc:  # a lost connection: the next beat may get through
                log.debug("in-progress ack failed: %s", exc)

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
                log.debug("milestone not delivered: %s", exc, extra=_ids(run.item))
                continue
            if not reply.accepted:
                log.debug("milestone rejected: %s", reply.reason, extra=_ids(run.item))


async def _settle(ack: Awaitable[None]) -> None:
    """Await an ack/nak/term, tolerating a connection that is already gone.

    If it is lost, JetStream redelivers after ack_wait, which is the safe side.
    """
    try:
        await ack
    except Exception as exc:
        log.debug("ack not sent: %s", exc)


def _ids(item: WorkItem) -> dict[str, object]:
    return {"task_id": str(item.task_id), "attempt": item.attempt}


def _brief(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in exc.errors())
