"""The LLM executor end to end: a real coordinator, a real executor process, and
protocol-faithful Ollama / OpenAI-compatible doubles on loopback ports in this process.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from harness import ServiceProcess, eventually, get_task, stream_envelopes, wait_for_status
from system.llm_stack import (
    MODEL,
    REPLY,
    MakeDouble,
    get_agent,
    hold_in_memory,
    progress_lines,
    register,
    submit,
)
from whoosh_executor_ollama.service import DURABLES
from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import CancelTask, LlmOptions, RetryPolicy
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.queries import TaskView
from whoosh_shared.runtime.bus import Bus

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def executor_env() -> dict[str, str]:
    """Probes only at the executor's start: these tests control what the servers have."""
    return {"WHOOSH__EXECUTOR__PROBE_INTERVAL_S": "600"}


async def test_a_task_completes_with_the_generated_text_and_usage(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY, tokens_per_s=20)  # 9 tokens: ~0.4 s of streaming
    await register(bus, "local-llama", double)
    async with progress_lines(bus) as lines:
        task_id = await submit(bus, "Tell me about foxes.")
        done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
        finished = time.monotonic()
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output == REPLY
    assert done.agent == "local-llama" and done.executor_id == "llm-test"
    assert done.usage.tokens_out == len(REPLY.split())
    assert done.usage.tokens_in > 0
    assert done.usage.decode_tps > 0
    assert done.usage.load_s > 0
    mine = [(at, p) for at, p in lines if p.task_id == task_id]
    assert "".join(p.line for _, p in mine) == REPLY
    assert all(p.stream == "token" for _, p in mine)
    assert [p.seq for _, p in mine] == list(range(1, len(mine) + 1))
    assert mine[0][0] < finished
    # the double saw the prompt as the user message of a native chat
    path, body = double.requests[-1]
    assert path == "/api/chat"
    assert body["model"] == MODEL
    assert body["messages"] == [{"role": "user", "content": "Tell me about foxes."}]


async def keep_alive_after_first_use(bus: Bus, agent: str, executor: ServiceProcess) -> float:
    """Run one task (the model's first use on `agent`, the only agent), then the keep-alive
    the coordinator learned for MODEL there (within 10 s); if it learns none, the failure
    shows the executor's log, where the probe's story is."""
    task_id = await submit(bus, "Tell me about foxes.")
    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert done.status is TaskStatus.COMPLETED, done.reason

    async def learned() -> float | None:
        warmth = (await get_agent(bus, agent)).warmth.get(MODEL)
        return warmth.keep_alive_s if warmth else None

    try:
        return await eventually(learned, timeout=10, what="the keep-alive learned")
    except AssertionError as exc:
        log_tail = executor.output()[-3000:]
        raise AssertionError(f"{exc}; the executor's log ends:\n{log_tail}") from None


async def test_a_servers_keep_alive_is_learned_soon_after_a_models_first_use(
    bus: Bus, llm_system: ServiceProcess, make_double: MakeDouble
) -> None:
    """The next periodic probe is 10 minutes away (executor_env): only the probe that
    follows a model's first use can tell the coordinator that this server unloads after
    20 s, not after Ollama's default 5 minutes."""
    double = make_double(reply=REPLY, keep_alive_s=20)
    await register(bus, "short-memory", double)
    before = double.probes["/api/ps"]
    keep_alive = await keep_alive_after_first_use(bus, "short-memory", llm_system)
    assert 15 < keep_alive <= 20, keep_alive
    assert double.probes["/api/ps"] == before + 1, "one probe after the first use"
    second = await submit(bus, "And about dogs?")
    assert (await wait_for_status(bus, second, TaskStatus.COMPLETED)).status is TaskStatus.COMPLETED
    await asyncio.sleep(1.0)  # a probe after the second use would have come by now
    assert double.probes["/api/ps"] == before + 1, "only the first use is followed by a probe"


async def test_a_failed_probe_after_a_first_use_is_tried_again(
    bus: Bus, llm_system: ServiceProcess, make_double: MakeDouble
) -> None:
    """The probe after a model's first use is best effort, but one hiccup of the server
    (or of the listing) must not lose it for the executor's life: it is tried again."""
    double = make_double(reply=REPLY, keep_alive_s=20)
    await register(bus, "hiccup", double)
    before = double.probes["/api/ps"]
    double.config.ps_failures = 1  # the first-use probe's first try fails
    keep_alive = await keep_alive_after_first_use(bus, "hiccup", llm_system)
    assert 15 < keep_alive <= 20, keep_alive
    assert double.probes["/api/ps"] == before + 2, "the failed probe and its second try"


async def test_a_busy_backend_sends_the_task_to_another_agent(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    busy = make_double(parallel=0)  # every generation answered 503: server busy
    idle = make_double(reply=REPLY)
    hold_in_memory(busy, idle)
    # the busy agent is the more proficient one, so the scheduler tries it first
    await register(bus, "busy-box", busy, capabilities={"chat": 1.0})
    await register(bus, "idle-box", idle, capabilities={"chat": 0.5})
    task_id = await submit(bus, retry=RetryPolicy(max_attempts=2))
    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output == REPLY
    assert done.attempt == 2
    assert done.tried_agents == ["busy-box"]  # the agents that failed it before
    assert done.agent == "idle-box"
    assert len(busy.requests) == 1 and busy.completed == 0
    assert idle.completed == 1


async def test_cancelling_a_running_task_closes_the_stream(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    double = make_double(reply=words, tokens_per_s=10)  # 20 s if left alone
    await register(bus, "slow-llama", double)
    async with progress_lines(bus) as lines:
        task_id = await submit(bus)
        await eventually(
            lambda: any(p.task_id == task_id for _, p in lines), timeout=15, what="a first token"
        )
        assert (await get_task(bus, task_id)).status is TaskStatus.RUNNING
        reply = await bus.send(CancelTask(task_id=task_id, reason="changed my mind"))
        assert reply.accepted, reply.reason
        cancelled_at = time.monotonic()
        await eventually(lambda: double.client_gone == 1, timeout=5, what="the client gone")
    assert time.monotonic() - cancelled_at < 3.0
    assert double.completed == 0 and double.active == 0
    view = await wait_for_status(bus, task_id, TaskStatus.CANCELLED)
    assert view.status is TaskStatus.CANCELLED
    sent = double.chunks_sent
    assert sent < 100

    # the executor's report kept what had been generated, and the work was acked
    async def output_kept() -> TaskView | None:
        kept = await get_task(bus, task_id)
        return kept if kept.output else None

    kept = await eventually(output_kept, timeout=10, what="the partial output kept")
    assert kept.status is TaskStatus.CANCELLED and kept.output.startswith("word0")
    assert kept.output in words and kept.usage.duration_s > 0

    async def work_acked() -> bool:
        info = await bus.js.consumer_info(subjects.WORK_STREAM, DURABLES[AgentType.OLLAMA])
        return info.num_ack_pending == 0 and info.num_pending == 0

    await eventually(work_acked, timeout=10, what="the work message acked")
    assert double.chunks_sent == sent  # it stopped generating


async def test_an_openai_compatible_agent_completes(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY, tokens_per_s=50)
    await register(bus, "vllm-box", double, kind=AgentType.OPENAI)
    async with progress_lines(bus) as lines:
        task_id = await submit(bus, "Hello there.")
        done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output == REPLY
    assert done.usage.tokens_out == len(REPLY.split())
    assert done.usage.decode_tps > 0
    assert done.usage.time_to_first_token_s > 0
    assert "".join(p.line for _, p in lines if p.task_id == task_id) == REPLY
    path, body = double.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "Hello there."}]


async def test_task_llm_options_reach_the_server(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY, tokens_per_s=200)
    await register(bus, "tuned", double)
    llm = LlmOptions(
        system="Answer in one line.",
        options={"temperature": 0.1, "seed": 7, "num_ctx": 2048},
        format="json",
        keep_alive="10m",
    )
    chat_id = await submit(bus, "Tell me.", llm=llm)
    raw_id = await submit(bus, "Once upon a time", llm=LlmOptions(raw=True, options={"seed": 1}))
    for task_id in (chat_id, raw_id):
        done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
        assert done.status is TaskStatus.COMPLETED, done.reason
    (chat,) = [body for path, body in double.requests if path == "/api/chat"]
    assert chat["messages"][0] == {"role": "system", "content": "Answer in one line."}
    assert chat["options"] == {"temperature": 0.1, "seed": 7, "num_ctx": 2048}
    assert chat["format"] == "json" and chat["keep_alive"] == "10m"
    (generate,) = [body for path, body in double.requests if path == "/api/generate"]
    assert generate["prompt"] == "Once upon a time" and generate["raw"] is True
    assert generate["options"] == {"seed": 1}
    assert (await get_task(bus, chat_id)).llm == llm


async def test_a_server_without_the_model_hands_the_task_on_without_using_an_attempt(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    # The model is removed from the server as the request arrives, so whether or not the
    # executor's start-up probe saw it listed, only the 404 tells the coordinator.
    lacking = make_double(removed_on_request={MODEL})
    having = make_double(reply=REPLY)
    hold_in_memory(lacking, having)
    await register(bus, "lacking", lacking, capabilities={"chat": 1.0})
    await register(bus, "having", having, capabilities={"chat": 0.5})
    task_id = await submit(bus, retry=RetryPolicy(max_attempts=1))
    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert (done.agent, done.tried_agents, done.attempt) == ("having", ["lacking"], 2)
    assert [body["model"] for _, body in lacking.requests] == [MODEL]
    # The agent is marked as lacking it (a later probe's listing may supersede the mark).
    await eventually(
        lambda: _model_missing_recorded(bus, task_id), what="AgentModelMissing on the bus"
    )
    # Marked as lacking it, the agent gets no more work for that model.
    again = await wait_for_status(bus, await submit(bus), TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert (again.agent, again.tried_agents) == ("having", [])
    assert len(lacking.requests) == 1


async def _model_missing_recorded(bus: Bus, task_id: object) -> bool:
    return any(
        e.type == "AgentModelMissing" and e.data == {"model": MODEL, "task_id": str(task_id)}
        for e in await stream_envelopes(bus.js)
    )
