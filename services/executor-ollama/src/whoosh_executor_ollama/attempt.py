"""Handling one work message: start the task, stream the LLM call, report, then (only
then) ack.

The envelope (read, claim with StartTask, keep the message alive, settle) is shared by
every executor (`whoosh_shared.runtime.work_message`, which says why the order makes executors
crash-safe); what is this executor's own is the LLM call: breaker, stream, usage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import aiohttp
from nats.aio.msg import Msg
from whoosh_shared.contract.agent_env import EnvReferenceError, resolved_value
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import (
    MAX_OUTPUT_CHARS,
    CompleteTask,
    FailTask,
    LlmOptions,
    Usage,
)
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime import executor_runtime
from whoosh_shared.runtime.progress import TokenCoalescer
from whoosh_shared.runtime.running_attempts import StopCause
from whoosh_shared.runtime.work_message import (
    SHUTDOWN_REDELIVERY_DELAY_S,
    claim,
    hold,
    ids,
    receive,
    settle,
)

from whoosh_executor_ollama.circuit_breaker import BreakerBoard, BreakerState, CircuitBreaker
from whoosh_executor_ollama.failures import Decision, Failure, LlmError, classify_exception
from whoosh_executor_ollama.http_pools import HttpPools
from whoosh_executor_ollama.ollama_api import OllamaClient
from whoosh_executor_ollama.openai_api import API_KEY_ENV, OpenAICompatClient
from whoosh_executor_ollama.running import LlmRun
from whoosh_executor_ollama.stream import LlmStream
from whoosh_executor_ollama.usage import LlmUsage

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000
TOKEN_STREAM = "token"
LLM_TYPES = (AgentType.OLLAMA, AgentType.OPENAI)


@dataclass(kw_only=True)
class ExecutorContext(executor_runtime.ExecutorContext[LlmRun]):
    """What every attempt on this executor shares (at shutdown, running calls are
    cancelled and redelivered)."""

    http: aiohttp.ClientSession
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    pools: HttpPools | None = None  # the service's: a pool per server (calls only)
    after_use: Callable[[AgentSpec, str], None] | None = None
    """Told of each completed call (agent, model): the inventory reporter probes a
    model's server soon after its first use, to learn the server's keep-alive."""

    def http_for(self, endpoint: str) -> aiohttp.ClientSession:
        """The session an LLM call to `endpoint` goes through."""
        return self.pools.for_endpoint(endpoint) if self.pools is not None else self.http


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
        item = await receive(msg, _serves, self.ctx.stopping, self.ctx.bus)
        if item is None:
            return
        run = LlmRun(item)
        ack_wait_s = self.ctx.settings.ack_wait_s
        await hold(msg, self.ctx.running, run, ack_wait_s, lambda: self._start_run_report(msg, run))

    async def _start_run_report(self, msg: Msg, run: LlmRun) -> None:
        """Claim, run, report. The call is sent while its claim (StartTask) is still on
        the way, so the coordinator's round trip overlaps the server's time to first
        token instead of adding to it; its tokens are held until the claim is accepted,
        and a refused claim stops the call with nothing published or reported."""
        item = run.item
        endpoint = item.agent.endpoint or ""
        breaker = self.ctx.breakers[endpoint]
        tokens = TokenCoalescer(self.ctx.progress.sink(item.task_id, item.attempt), held=True)
        early = self._call_early(run, tokens, breaker)
        if not await claim(self.ctx.bus, msg, item, self.ctx.executor_id):
            await _abandon(run, tokens, early)
            return
        if self.ctx.stopping.is_set() or run.stop_cause is StopCause.SHUTDOWN:
            await _abandon(run, tokens, early)
            await settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
            return
        tokens.release()

        log.info("task started", extra={**ids(item), "agent": item.agent.name})
        if early is None and not breaker.allow_request():
            wait_s = breaker.retry_after_s()
            command: CompleteTask | FailTask = FailTask(
                task_id=item.task_id,
                attempt=item.attempt,
                reason=_clip(f"{endpoint} is cooling down after failures (retry in {wait_s:.0f}s)"),
                retryable=True,
            )
            result = None
        else:
            result = await (early if early is not None else self._run(run, tokens))
            if result.outcome is Outcome.STOPPED and run.stop_cause is StopCause.SHUTDOWN:
                log.info("task abandoned at shutdown, to be redelivered", extra=ids(item))
                await settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
                return
            if result.outcome is Outcome.COMPLETED:
                breaker.record(None)
            elif result.outcome is Outcome.FAILED and result.failure is not None:
                breaker.record(result.failure)
            command = result_command(run, result)

        tokens.flush()
        await self.ctx.progress.flushed()  # the last tokens go out before the report
        await executor_runtime.report_and_ack(
            self.ctx,
            msg,
            item,
            command,
            log=log,
            outcome=result.outcome.value if result else "cooling_down",
            duration_s=round(result.duration_s, 3) if result else 0.0,
        )
        if result and result.outcome is Outcome.COMPLETED and self.ctx.after_use is not None:
            self.ctx.after_use(item.agent, item.model or item.agent.model or "")

    def _call_early(
        self, run: LlmRun, tokens: TokenCoalescer, breaker: CircuitBreaker
    ) -> asyncio.Task[CallResult] | None:
        """Start the call before the claim is answered, when nothing speaks against it:
        not while stopping, and only through a closed breaker (a half-open one's single
        trial waits for the claim, so a refused claim cannot spend it)."""
        if self.ctx.stopping.is_set() or run.stop_cause is not None:
            return None
        if breaker.state is not BreakerState.CLOSED or not breaker.allow_request():
            return None
        item = run.item
        return asyncio.create_task(self._run(run, tokens), name=f"attempt-{item.task_id}")

    async def _run(self, run: LlmRun, tokens: TokenCoalescer | None = None) -> CallResult:
        """Stream the call within the task's timeout; a stop from outside cancels it."""
        item = run.item
        started = time.monotonic()
        if tokens is None:
            tokens = TokenCoalescer(self.ctx.progress.sink(item.task_id, item.attempt))
        call = asyncio.create_task(
            self._stream(run, tokens), name=f"llm-{item.task_id}-{item.attempt}"
        )
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
            log.error("LLM call raised %r", exc, extra=ids(item), exc_info=exc)
        return CallResult(Outcome.FAILED, text, elapsed, failure=failure)

    async def _stream(self, run: LlmRun, tokens: TokenCoalescer) -> None:
        """Chunks go to the coalescer as they come (no per-chunk message or validation
        here); what it gathered goes out however the call ends."""
        stream = self._open(run.item)
        run.stream = stream
        try:
            async with stream:
                async for chunk in stream:
                    run.chunks += 1
                    tokens(TOKEN_STREAM, chunk)
        finally:
            tokens.flush()

    def _open(self, item: WorkItem) -> LlmStream:
        agent = item.agent
        endpoint = agent.endpoint or ""
        model = item.model or agent.model or ""
        messages = [{"role": "user", "content": item.prompt}]
        llm = item.llm or LlmOptions()
        if agent.type is AgentType.OPENAI:
            try:  # ${NAME} from this executor's environment
                api_key = resolved_value(agent.env, API_KEY_ENV, os.environ)
            except EnvReferenceError as exc:
                raise LlmError(Failure(Decision.FAIL_NO_RETRY, str(exc))) from None
            client = OpenAICompatClient(
                endpoint, api_key=api_key, session=self.ctx.http_for(endpoint)
            )
            return client.chat(
                model,
                messages,
                system=llm.system,
                options=llm.options,
                format=llm.format,
                tools=llm.tools or None,
            )
        ollama = OllamaClient(endpoint, session=self.ctx.http_for(endpoint))
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


async def _abandon(
    run: LlmRun, tokens: TokenCoalescer, early: asyncio.Task[CallResult] | None
) -> None:
    """An attempt that is not ours to run: stop its early call, publish none of it."""
    if early is not None:
        run.stop(StopCause.SUPERSEDED, "the claim was refused")
        await asyncio.gather(early, return_exceptions=True)
    tokens.discard()


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
        missing_model=failure.missing_model,
    )


def _tail(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else text[-MAX_OUTPUT_CHARS:]


def _clip(text: str) -> str:
    text = text or "failed"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _serves(item: WorkItem) -> bool:
    return item.agent.type in LLM_TYPES and bool(item.agent.endpoint)
