"""One attempt's LLM call against the double, and what it reports (no bus needed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from executor_ollama.ollama_double import OllamaDouble
from whoosh_executor_ollama.attempt import (
    AttemptHandler,
    CallResult,
    ExecutorContext,
    Outcome,
    result_command,
)
from whoosh_executor_ollama.failures import Decision, Failure
from whoosh_executor_ollama.http_pools import new_session
from whoosh_executor_ollama.running import LlmRun
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS, CompleteTask, FailTask
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.events import EventData, EventEnvelope, TaskCancelled, TaskTimedOut
from whoosh_shared.contract.work import ProgressLine, WorkItem
from whoosh_shared.runtime.progress import ProgressPublisher
from whoosh_shared.runtime.running_attempts import RunningAttempts, StopCause, stop_for_event

MODEL = "llama3.2:1b"


def item_for(url: str, kind: AgentType = AgentType.OLLAMA, timeout_s: float = 10) -> WorkItem:
    agent = AgentSpec(name="llm", type=kind, endpoint=url, model=MODEL)
    return WorkItem(task_id=uuid.uuid4(), attempt=1, agent=agent, prompt="hi", timeout_s=timeout_s)


def event(task_id: uuid.UUID, payload: EventData) -> bytes:
    envelope = EventEnvelope(
        notification_id=1,
        aggregate_type="task",
        aggregate_id=task_id,
        version=3,
        type=type(payload).__name__,
        timestamp=datetime.now(UTC),
        data=payload.model_dump(mode="json"),
    )
    return envelope.model_dump_json().encode()


def handler(http: aiohttp.ClientSession) -> tuple[AttemptHandler, ProgressPublisher]:
    progress = ProgressPublisher(None, max_queued=10_000)  # type: ignore[arg-type]  # never started
    ctx = ExecutorContext(
        bus=None,  # type: ignore[arg-type]  # _run never touches the bus
        executor_id="t",
        settings=ExecutorSettings(),
        progress=progress,
        http=http,
    )
    return AttemptHandler(ctx), progress


async def test_a_call_streams_tokens_and_completes(double: OllamaDouble) -> None:
    async with new_session() as http:
        attempt, progress = handler(http)
        for kind in (AgentType.OLLAMA, AgentType.OPENAI):
            run = LlmRun(item_for(double.url, kind))
            result = await attempt._run(run)
            assert result.outcome is Outcome.COMPLETED
            assert result.text == double.config.reply
            assert result.usage is not None and result.usage.tokens_out == 9
            command = result_command(run, result)
            assert isinstance(command, CompleteTask)
            assert command.output == double.config.reply
            assert command.usage.decode_tps > 0
    lines = [ProgressLine.model_validate_json(data) for _, data in queued(progress)]
    by_task: dict[uuid.UUID, list[ProgressLine]] = {}
    for line in lines:
        by_task.setdefault(line.task_id, []).append(line)
    assert len(by_task) == 2
    for kind_lines in by_task.values():
        assert "".join(line.line for line in kind_lines) == double.config.reply  # all, in order
        assert [line.seq for line in kind_lines] == list(range(1, len(kind_lines) + 1))
        assert kind_lines[0].line == "The "  # the first token alone, at once
    assert len(lines) < 18  # the later tokens were coalesced (9 per call)


def queued(progress: ProgressPublisher) -> list[tuple[str, bytes]]:
    entries = []
    while not progress._queue.empty():
        entry = progress._queue.get_nowait()
        assert isinstance(entry, tuple)
        entries.append(entry)
    return entries


async def test_the_task_timeout_stops_the_call(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(reply=" ".join(["slow"] * 100), tokens_per_s=20)
    async with new_session() as http:
        attempt, _ = handler(http)
        run = LlmRun(item_for(double.url, timeout_s=0.3))
        result = await attempt._run(run)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.text.startswith("slow")
    command = result_command(run, result)
    assert isinstance(command, FailTask)
    assert command.timed_out and not command.retryable
    assert command.output == result.text


async def test_a_stop_cancels_the_call(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(reply=" ".join(["slow"] * 100), tokens_per_s=20)
    async with new_session() as http:
        attempt, _ = handler(http)
        running = RunningAttempts()
        run = LlmRun(item_for(double.url))
        running.add(run)
        calling = asyncio.create_task(attempt._run(run))
        while run.chunks == 0:
            await asyncio.sleep(0.01)
        assert stop_for_event(running, event(run.item.task_id, TaskCancelled(reason="no"))) == 1
        result = await asyncio.wait_for(calling, 2)
    assert result.outcome is Outcome.STOPPED and run.stop_cause is StopCause.CANCELLED
    command = result_command(run, result)
    assert isinstance(command, FailTask) and not command.retryable and not command.timed_out


def test_a_coordinator_timeout_stops_only_its_attempt() -> None:
    running = RunningAttempts()
    run = LlmRun(item_for("http://127.0.0.1:1"))
    running.add(run)
    task_id = run.item.task_id
    assert stop_for_event(running, event(task_id, TaskTimedOut(attempt=2, reason="late"))) == 0
    assert stop_for_event(running, event(task_id, TaskTimedOut(attempt=1, reason="late"))) == 1
    assert run.stop_cause is StopCause.TIMED_OUT
    command = result_command(run, CallResult(Outcome.STOPPED, "", 1.0))
    assert isinstance(command, FailTask) and command.timed_out


def test_failures_map_to_retryable_or_not() -> None:
    run = LlmRun(item_for("http://127.0.0.1:1"))
    for decision, retryable in (
        (Decision.RETRY_ELSEWHERE, True),
        (Decision.REJECT_FOR_AGENT, True),
        (Decision.FAIL_NO_RETRY, False),
    ):
        failure = Failure(decision, f"because {decision}")
        command = result_command(run, CallResult(Outcome.FAILED, "x", 0.5, failure=failure))
        assert isinstance(command, FailTask)
        assert command.retryable is retryable and command.reason == f"because {decision}"
        assert command.usage.duration_s == 0.5


def test_long_output_keeps_its_tail() -> None:
    run = LlmRun(item_for("http://127.0.0.1:1"))
    text = "a" * MAX_OUTPUT_CHARS + "end"
    command = result_command(run, CallResult(Outcome.COMPLETED, text, 1.0))
    assert len(command.output) == MAX_OUTPUT_CHARS and command.output.endswith("end")


async def test_calls_one_after_another_reuse_one_connection(double: OllamaDouble) -> None:
    """A finished stream is read to its end, so its connection goes back to the pool
    (leaving it unread closed it: a new TCP connection for every call)."""
    async with new_session() as http:
        attempt, _ = handler(http)
        for kind in (AgentType.OLLAMA, AgentType.OPENAI, AgentType.OLLAMA):
            result = await attempt._run(LlmRun(item_for(double.url, kind)))
            assert result.outcome is Outcome.COMPLETED
    assert len(double.requests) == 3
    assert len(double.client_ports) == 1
