"""Routing LLM work end to end: the executor probes several Ollama doubles of different
speeds and contents, the coordinator schedules by what it learned, and failures of one
server move work to another. Real coordinator and executor processes."""

from __future__ import annotations

import pytest
from executor_ollama.ollama_double import ModelSpec, OllamaDouble
from harness import eventually, get_task, wait_for_status
from system.llm_stack import (
    MODEL,
    REPLY,
    MakeDouble,
    finished,
    get_agent,
    register,
    submit,
)
from whoosh_shared.contract.commands import LlmOptions, RetryPolicy, SubmitTask
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import AgentView
from whoosh_shared.runtime.bus import Bus

pytestmark = pytest.mark.timeout(90)

PROBE_INTERVAL_S = 0.3


@pytest.fixture
def executor_env() -> dict[str, str]:
    return {"WHOOSH__EXECUTOR__PROBE_INTERVAL_S": str(PROBE_INTERVAL_S)}


async def probed(bus: Bus, name: str, reachable: bool = True) -> AgentView:
    async def seen() -> AgentView | None:
        view = await get_agent(bus, name)
        inventory = view.inventory
        return view if inventory is not None and inventory.reachable is reachable else None

    state = "reachable" if reachable else "unreachable"
    return await eventually(seen, timeout=10, what=f"agent {name} probed {state}")


async def test_the_probe_reports_models_and_a_task_for_a_model_goes_where_it_is(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    gemma_only = make_double(models={"gemma3:1b": ModelSpec(context_length=4096)})
    both = make_double(
        models={
            MODEL: ModelSpec(capabilities=["completion", "tools"], context_length=131072),
            "qwen3:8b": ModelSpec(capabilities=["completion", "thinking"]),
        }
    )
    await register(bus, "gemma-box", gemma_only)
    await register(bus, "big-box", both)
    view = await probed(bus, "big-box")
    assert view.inventory is not None
    assert view.inventory.version and set(view.inventory.models) == {MODEL, "qwen3:8b"}
    assert view.inventory.models["qwen3:8b"].capabilities == ["completion", "thinking"]
    await probed(bus, "gemma-box")

    thinking = await submit(bus, capabilities=["thinking"], model="qwen3:8b")
    done = await finished(bus, thinking)
    assert done.status is TaskStatus.COMPLETED and done.agent == "big-box"
    assert both.requests[-1][1]["model"] == "qwen3:8b"
    # gemma-box is configured for llama3.2:1b, which its server does not have: a task
    # for the configured model goes to the server that has it, every time.
    for _ in range(3):
        plain = await finished(bus, await submit(bus))
        assert plain.status is TaskStatus.COMPLETED and plain.agent == "big-box"
    assert gemma_only.requests == []
    # The model's warm now: the next probe says so.
    await eventually(
        lambda: _loaded(bus, "big-box", MODEL), timeout=10, what="the model reported loaded"
    )


async def _loaded(bus: Bus, name: str, model: str) -> bool:
    view = await get_agent(bus, name)
    return view.inventory is not None and view.inventory.is_loaded(model)


async def test_routing_prefers_the_agent_measured_faster(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    # Reported speeds (what usage measures) differ tenfold; real pacing follows them.
    fast = make_double(tokens_per_s=400, decode_ns_per_token=5_000_000)
    slow = make_double(tokens_per_s=40, decode_ns_per_token=50_000_000)
    await register(bus, "fast-gpu", fast, max_concurrent=2)
    await register(bus, "slow-gpu", slow, max_concurrent=2)
    agents = []
    for _ in range(7):
        done = await finished(bus, await submit(bus))
        assert done.status is TaskStatus.COMPLETED, done.reason
        agents.append(done.agent)
    # Each is tried (and measured) once; from then on the faster one gets the work.
    assert set(agents[:2]) == {"fast-gpu", "slow-gpu"}
    assert agents[2:] == ["fast-gpu"] * 5
    fast_view, slow_view = await get_agent(bus, "fast-gpu"), await get_agent(bus, "slow-gpu")
    assert fast_view.speeds[MODEL].decode_tps == pytest.approx(200.0)
    assert slow_view.speeds[MODEL].decode_tps == pytest.approx(20.0)
    assert fast_view.speeds[MODEL].samples == 6 and slow_view.speeds[MODEL].samples == 1


async def test_a_dead_server_loses_its_task_and_its_place_and_comes_back(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    doomed = make_double(reply=words, tokens_per_s=10)
    spare = make_double(reply=REPLY)
    await register(bus, "doomed", doomed, capabilities={"chat": 1.0})
    await register(bus, "spare", spare, capabilities={"chat": 0.5})
    await probed(bus, "doomed")
    await probed(bus, "spare")
    task_id = await submit(bus, retry=RetryPolicy(max_attempts=2))
    running = await wait_for_status(bus, task_id, TaskStatus.RUNNING)
    assert running.agent == "doomed"
    doomed.stop()  # mid-stream: the connection drops
    done = await finished(bus, task_id)
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert (done.agent, done.tried_agents, done.output) == ("spare", ["doomed"], REPLY)

    view = await probed(bus, "doomed", reachable=False)
    assert view.inventory is not None and "cannot connect" in (view.inventory.reason or "")
    # Out of rotation: new work goes to the spare without trying the dead server.
    later = await finished(bus, await submit(bus, retry=RetryPolicy(max_attempts=1)))
    assert (later.status, later.agent, later.attempt) == (TaskStatus.COMPLETED, "spare", 1)

    revived = OllamaDouble(doomed.config)
    revived.port = doomed.port
    revived.config.reply = REPLY
    revived.config.tokens_per_s = 2000
    revived.start()
    try:
        await probed(bus, "doomed")
        back = await finished(bus, await submit(bus))
        assert back.status is TaskStatus.COMPLETED and back.agent == "doomed"
    finally:
        revived.stop()


async def test_options_the_server_rejects_fail_the_task_once_with_the_reason(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY)
    await register(bus, "strict", double)
    bad = LlmOptions(options={"temperature": "hot"})
    done = await finished(bus, await submit(bus, llm=bad, retry=RetryPolicy(max_attempts=3)))
    assert done.status is TaskStatus.FAILED and done.attempt == 1
    assert 'option "temperature" must be of type float32' in (done.reason or "")
    # The request was at fault, not the server: it still takes work.
    good = await finished(bus, await submit(bus))
    assert good.status is TaskStatus.COMPLETED and good.agent == "strict"


async def test_a_prompt_over_the_known_context_length_is_refused_at_submit(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    double = make_double(models={MODEL: ModelSpec(context_length=64)})
    await register(bus, "small-ctx", double)
    await probed(bus, "small-ctx")
    reply = await bus.send(SubmitTask(prompt="x" * 1000, capabilities=["chat"]))
    assert not reply.accepted and reply.code == "no_capable_agent"
    assert "context length" in (reply.reason or "") and "64 tokens" in (reply.reason or "")
    fits = await finished(bus, await submit(bus, "short"))
    assert fits.status is TaskStatus.COMPLETED
    assert double.requests and all(len(str(b)) < 1000 for _, b in double.requests)
    assert (await get_task(bus, fits.id)).agent == "small-ctx"
