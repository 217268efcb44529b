"""Threads end to end: a real coordinator and LLM executor, three Ollama doubles whose
answers are fixed; a kill -9 of the coordinator mid-round loses no vote."""

from __future__ import annotations

import contextlib
from uuid import UUID

import pytest
from harness import eventually, wait_for_coordinator
from nats.js.errors import NotFoundError
from system.llm_stack import NO_CONFIG_FILE, MakeDouble, hold_in_memory, register
from whoosh_executor_ollama.service import DURABLES
from whoosh_shared.contract import subjects
from whoosh_shared.contract import threads as t
from whoosh_shared.runtime.bus import Bus

pytestmark = pytest.mark.timeout(120)
ANSWERS = {"llm-a": "4", "llm-b": "4", "llm-c": "5"}


async def thread_view(bus: Bus, thread_id: UUID) -> t.ThreadView:
    reply = await bus.ask(t.GetThread(thread_id=thread_id))
    assert reply.status == "ok", reply.reason
    return t.ThreadView.model_validate(reply.result)


async def closed(bus: Bus, thread_id: UUID, timeout: float = 60) -> t.ThreadView:
    async def done() -> t.ThreadView | None:
        with contextlib.suppress(Exception):
            view = await thread_view(bus, thread_id)
            return view if view.state is t.ThreadState.CLOSED else None
        return None

    return await eventually(done, timeout=timeout, interval=0.2, what="the thread to close")


async def fleet(bus: Bus, make_double: MakeDouble, **config: object) -> None:
    doubles = []
    for name, value in ANSWERS.items():
        double = make_double(reply=f"Let me compute.\nANSWER: {value}", **config)
        doubles.append(double)
        await register(bus, name, double)
    hold_in_memory(*doubles)


async def start(bus: Bus) -> UUID:
    command = t.StartThread(
        topic="What is 2+2?",
        participants=[t.Participant(agent=name) for name in ANSWERS],
        answer_type=t.AnswerType.INT,
    )
    reply = await bus.send(command)
    assert reply.accepted, reply.reason
    return UUID(reply.ids["thread_id"])


async def test_a_question_over_three_ollama_doubles(
    bus: Bus, llm_system: object, make_double: MakeDouble
) -> None:
    await fleet(bus, make_double)
    thread_id = await start(bus)
    view = await closed(bus, thread_id)
    assert (view.outcome, view.decision) == ("consensus", "4")
    assert sorted((v.voter, v.value) for v in view.votes) == sorted(ANSWERS.items())


async def test_kill_9_of_the_coordinator_mid_round_loses_no_vote(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, make_double: MakeDouble
) -> None:
    def coordinator():
        return spawn(
            "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url,
            env=NO_CONFIG_FILE,
        )  # fmt: skip

    first = coordinator()
    executor = spawn(
        "whoosh_executor_ollama", "--nats", nats_url, "--executor-id", "llm-kill",
        env={**NO_CONFIG_FILE, "WHOOSH__EXECUTOR__ACK_WAIT_S": "5"},
    )  # fmt: skip
    try:
        await wait_for_coordinator(bus)
        await eventually(lambda: "executor ready" in executor.output(), timeout=20)
        await fleet(bus, make_double, tokens_per_s=3)  # ~2 s per answer: time to crash
        thread_id = await start(bus)

        async def running() -> bool:
            view = await thread_view(bus, thread_id)
            return bool(view.rounds) and not view.votes

        await eventually(running, timeout=10)
        first.kill()  # kill -9 while the participants' tasks stream
        coordinator()  # same store: replay, then the executors' reports are answered
        await wait_for_coordinator(bus)
        view = await closed(bus, thread_id)
        assert (view.outcome, view.decision) == ("consensus", "4")
        assert sorted((v.voter, v.value) for v in view.votes) == sorted(ANSWERS.items())
    finally:
        executor.stop()
        for durable in DURABLES.values():
            with contextlib.suppress(NotFoundError):
                await bus.js.delete_consumer(subjects.WORK_STREAM, durable)
