"""Handling one work message: start the task, stream the LLM call, report, then (only
then) ack.

The order is what makes executors crash-safe. The work message stays unacked (kept
alive with in-progress acks) until the coordinator has answered the report, so if this
process dies at any point before that, JetStream redelivers the message to another
executor after ack_wait, and the coordinator sorts out stale attempts by their attempt
number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError
from whoosh_shared.bus import Bus, BusError, send_until_answered
from whoosh_shared.commands import (
    MAX_OUTPUT_CHARS,
    CompleteTask,
    FailTask,
    LlmOptions,
    StartTask,
    Usage,
)
from whoosh_shared.config import ExecutorSettings
from whoosh_shared.enums import AgentType
from whoosh_shared.progress import ProgressPublisher
from whoosh_shared.running_attempts import RunningAttempts, StopCause
from whoosh_shared.work import WorkItem

from whoosh_executor_ollama.circuit_breaker import BreakerBoard
from whoosh_executor_ollama.failures import Decision, Failure, LlmError, classify_exception
from whoosh_executor_ollama.ollama_api import OllamaClient
from whoosh_executor_ollama.openai_api import OpenAICompatClient
from whoosh_executor_ollama.running import LlmRun
from whoosh_executor_ollama.stream import LlmStream
from whoosh_executor_ollama.usage import LlmUsage

log = logging.getLogger(__name__)

# Redelivery delays: set explicitly, since a NAK without one redelivers at once.
COORDINATOR_DOWN_DELAY_S = 1.0
SHUTDOWN_REDELIVERY_DELAY_S = 0.5
MAX_REASON_CHARS = 2000
TOKEN_STREAM = "token"
LLM_TYPES = (AgentType.OLLAMA, AgentType.OPENAI)
# Where an openai-compatible agent keeps its key (AgentSpec has no field for secrets).
API_KEY_ENV = "OPENAI_API_KEY"


@dataclass
class ExecutorContext:
    """What every attempt on this executor shares."""

    bus: Bus
    executor_id: str
    settings: ExecutorSettings
    progress: ProgressPublisher
    http: httpx.AsyncClient
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    running: RunningAttempts[LlmRun] = field(default_factory=RunningAttempts)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at shutdown: start nothing new; running calls are cancelled and redelivered."""
    abandon_reports: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when shutdown can wait no longer for unanswered reports."""


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"  # the LLM call failed (an LlmError)
    TIMED_OUT = "timed_out"  # the task's own timeout ran out here
    STOPPED = "stopped"  # stopped from outside (cancel, coordinator timeout, shutdown)


@dataclass
class CallResult:
    outcome: Outcome
    text: str
    duration_s: float
    usage: LlmUsage | None = None
    failure: Failure | None = None

    def contract_usage(self) -> Usage:
        if self.usage is not None:
            return self.usage.to_usage()
        return Usage(duration_s=self.duration_s)


class AttemptHandler:
    """Runs the work messages the consumers hand it, each in its own asyncio task."""

    def __init__(self, ctx: ExecutorContext) -> None:
        self.ctx = ctx

    async def handle(self, msg: Msg) -> None:
        try:
            item = WorkItem.model_validate_json(msg.data)
        except ValidationError as exc:
            log.error("dropping an invalid work message on %s: %s", msg.subject, _brief(exc))
            await _settle(msg.term())
            return
        if item.agent.type not in LLM_TYPES or not item.agent.endpoint:
            log.error("dropping work for a %s agent on %s", item.agent.type.value, msg.subject)
            await _settle(msg.term())
            return
        if self.ctx.stopping.is_set():
            await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return
        run = LlmRun(item)
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

    async def _start_run_report(self, msg: Msg, run: LlmRun) -> None:
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
        if self.ctx.stopping.is_set() or run.stop_cause is StopCause.SHUTDOWN:
            await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return

        endpoint = item.agent.endpoint or ""
        breaker = self.ctx.breakers[endpoint]
        log.info("task started", extra={**_ids(item), "agent": item.agent.name})
        if not breaker.allow_request():
            wait_s = breaker.retry_after_s()
            command: CompleteTask | FailTask = FailTask(
                task_id=item.task_id,
                attempt=item.attempt,
                reason=_clip(f"{endpoint} is cooling down after failures (retry in {wait_s:.0f}s)"),
                retryable=True,
            )
            result = None
        else:
            result = await self._run(run)
            if result.outcome is Outcome.STOPPED and run.stop_cause is StopCause.SHUTDOWN:
                log.info("task abandoned at shutdown, to be redelivered", extra=_ids(item))
                await _settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
                return
            if result.outcome is Outcome.COMPLETED:
                breaker.record(None)
            elif result.outcome is Outcome.FAILED and result.failure is not None:
                breaker.record(result.failure)
            command = result_command(run, result)

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
                "outcome": result.outcome.value if result else "cooling_down",
                "duration_s": round(result.duration_s, 3) if result else 0.0,
                "reply": reply.status if reply.accepted else f"rejected: {reply.reason}",
            },
        )

    async def _run(self, run: LlmRun) -> CallResult:
        """Stream the call within the task's timeout; a stop from outside cancels it."""
        item = run.item
        started = time.monotonic()
        call = asyncio.create_task(self._stream(run), name=f"llm-{item.task_id}-{item.attempt}")
        run.call = call
        if run.stop_cause is not None:  # stopped between the start and now
            call.cancel()
        done, _ = await asyncio.wait({call}, timeout=item.timeout_s)
        timed_out = not done
        if timed_out:
            call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        elapsed = time.monotonic() - started
        text = run.partial_text
        if call.cancelled():
            outcome = Outcome.TIMED_OUT if timed_out else Outcome.STOPPED
            return CallResult(outcome, text, elapsed)
        exc = call.exception()
        if exc is None:
            usage = run.stream.usage if run.stream is not None else None
            return CallResult(Outcome.COMPLETED, text, elapsed, usage=usage)
        failure = exc.failure if isinstance(exc, LlmError) else classify_exception(exc)
        if not isinstance(exc, LlmError):
            log.error("LLM call raised %r", exc, extra=_ids(item), exc_info=exc)
        return CallResult(Outcome.FAILED, text, elapsed, failure=failure)

    async def _stream(self, run: LlmRun) -> None:
        item = run.item
        sink = self.ctx.progress.sink(item.task_id, item.attempt)
        stream = self._open(item)
        run.stream = stream
        async with stream:
            async for chunk in stream:
                run.chunks += 1
                sink(TOKEN_STREAM, chunk)

    def _open(self, item: WorkItem) -> LlmStream:
        agent = item.agent
        endpoint = agent.endpoint or ""
        model = agent.model or ""
        messages = [{"role": "user", "content": item.prompt}]
        llm = item.llm or LlmOptions()
        if agent.type is AgentType.OPENAI:
            api_key = agent.env.get(API_KEY_ENV)
            client = OpenAICompatClient(endpoint, api_key=api_key, client=self.ctx.http)
            return client.chat(
                model,
                messages,
                system=llm.system,
                options=llm.options,
                format=llm.format,
                tools=llm.tools or None,
            )
        ollama = OllamaClient(endpoint, client=self.ctx.http)
        if llm.raw:  # plain completion, as the task asked
            return ollama.generate(
                model,
                item.prompt,
                system=llm.system,
                options=llm.options,
                format=llm.format,
                keep_alive=llm.keep_alive,
                raw=True,
            )
        return ollama.chat(
            model,
            messages,
            system=llm.system,
            options=llm.options,
            format=llm.format,
            keep_alive=llm.keep_alive,
            tools=llm.tools or None,
        )

    async def _keep_message(self, msg: Msg) -> None:
        """Tell JetStream the work is still in hand, so ack_wait never runs out."""
        interval = self.ctx.settings.ack_wait_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
            except Exception as exc:  # a lost connection: the next beat may get through
                log.debug("in-progress ack failed: %s", exc)


def result_command(run: LlmRun, result: CallResult) -> CompleteTask | FailTask:
    """The CompleteTask or FailTask that reports one finished call."""
    item = run.item
    ids = {"task_id": item.task_id, "attempt": item.attempt}
    output = _tail(result.text)
    usage = result.contract_usage()
    if result.outcome is Outcome.COMPLETED:
        return CompleteTask(**ids, output=output, usage=usage)
    if result.outcome is Outcome.TIMED_OUT:
        return FailTask(
            **ids,
            reason=f"timed out after {item.timeout_s:g}s",
            output=output,
            retryable=False,
            timed_out=True,
            usage=usage,
        )
    if result.outcome is Outcome.STOPPED:
        # Cancelled or timed out by the coordinator: the task has ended there, and this
        # report will be rejected; it is sent all the same so the message is acked only
        # once the coordinator has answered.
        return FailTask(
            **ids,
            reason=_clip(f"stopped: {run.stop_reason or 'cancelled'}"),
            output=output,
            retryable=False,
            timed_out=run.stop_cause is StopCause.TIMED_OUT,
            usage=usage,
        )
    failure = result.failure
    assert failure is not None
    return FailTask(
        **ids,
        reason=_clip(failure.reason),
        output=output,
        retryable=failure.decision is not Decision.FAIL_NO_RETRY,
        usage=usage,
    )


async def _settle(ack: Awaitable[None]) -> None:
    """Await an ack/nak/term, tolerating a connection that is already gone.

    If it is lost, JetStream redelivers after ack_wait, which is the safe side.
    """
    try:
        await ack
    except Exception as exc:
        log.debug("ack not sent: %s", exc)


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else text[-MAX_OUTPUT_CHARS:]


def _clip(text: str) -> str:
    text = text or "failed"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _ids(item: WorkItem) -> dict[str, object]:
    return {"task_id": str(item.task_id), "attempt": item.attempt}


def _brief(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in exc.errors())
