"""The work consumer and the executor process against a real nats-server (no coordinator).

The first test pins down why the executor fetches for itself: it must never hold
more work messages than it has free slots, or a queued one ages past ack_wait
unattended and a second executor runs it too.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from harness import ServiceProcess, eventually
from nats.aio.msg import Msg
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CommandReply, CompleteTask, RejectCode, StartTask
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.work_queue import WorkConsumer

StartExecutor = Callable[..., ServiceProcess]  # the `start_executor` fixture (conftest.py)


def work_item(command: list[str]) -> WorkItem:
    return WorkItem(
        task_id=uuid.uuid4(),
        attempt=1,
        agent=AgentSpec(name="local", command=command),
        prompt="hello",
        timeout_s=30,
    )


async def consumer_state(bus: Bus) -> tuple[int, int, int]:
    """(ack pending, not yet delivered, redelivered) of the shared durable consumer."""
    info = await bus.js.consumer_info(subjects.WORK_STREAM, DURABLE_NAME)
    return info.num_ack_pending, info.num_pending, info.num_redelivered


class ConsumerRun:
    """A WorkConsumer of the executor's durable, running; its handler records each message
    and acks it, once `release` is set when one is given."""

    def __init__(self, bus: Bus, max_parallel: int, release: asyncio.Event | None = None) -> None:
        self.handled: list[bytes] = []

        async def handler(msg: Msg) -> None:
            self.handled.append(msg.data)
            if release is not None:
                await release.wait()
            await msg.ack()

        settings = ExecutorSettings(max_parallel=max_parallel, ack_wait_s=30)
        self.consumer = WorkConsumer(
            bus.nc, settings, handler, durable=DURABLE_NAME, agent_type=AgentType.CLI
        )

    async def __aenter__(self) -> ConsumerRun:
        await self.consumer.bind()
        self.running = asyncio.create_task(self.consumer.run())
        return self

    async def __aexit__(self, *_: object) -> None:
        self.consumer.stop()
        await self.running
        await self.consumer.drain()
        await self.consumer.close()


async def test_consumer_holds_no_more_messages_than_free_slots(
    bus: Bus, work_consumer_removed: None
) -> None:
    release = asyncio.Event()
    async with ConsumerRun(bus, max_parallel=2, release=release) as run:
        try:
            for i in range(6):
                await bus.js.publish(subjects.work("cli", "local"), f"m{i}".encode())
            await eventually(lambda: len(run.handled) == 2, what="two handlers running")
            await asyncio.sleep(0.5)  # time for an over-eager fetch to show
            ack_pending, undelivered, _ = await consumer_state(bus)
            assert (ack_pending, undelivered) == (2, 4)
            assert run.consumer.active == 2

            release.set()
            await eventually(lambda: len(run.handled) == 6, what="all six handled")
            assert run.handled == [f"m{i}".encode() for i in range(6)]  # FIFO

            async def all_acked() -> bool:
                return (await consumer_state(bus))[:2] == (0, 0)

            await eventually(all_acked, what="all acked")
        finally:
            release.set()  # a failed assertion above must not leave drain() waiting forever


async def test_a_standing_pull_request_serves_work_arriving_one_at_a_time(
    bus: Bus, work_consumer_removed: None
) -> None:
    """With free slots the consumer keeps a request standing for them and tops it up only
    once the slots freed outnumber what is still asked for: not a pull request (or three,
    as fetch-one-then-the-backlog made) per message, each a round of work for nats-server
    and the executor."""
    requests: list[bytes] = []

    async def spy(msg: Msg) -> None:
        requests.append(msg.data)

    next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{subjects.WORK_STREAM}.{DURABLE_NAME}"
    sub = await bus.nc.subscribe(next_subject, cb=spy)
    try:
        async with ConsumerRun(bus, max_parallel=8) as run:
            for i in range(20):
                await bus.js.publish(subjects.work("cli", "local"), f"m{i}".encode())
                await eventually(lambda i=i: len(run.handled) == i + 1, what=f"m{i} handled")
        assert run.handled == [f"m{i}".encode() for i in range(20)]
        assert 1 <= len(requests) <= 8, [json.loads(r) for r in requests]
        assert all(json.loads(r)["batch"] <= 8 for r in requests)  # never past the slots
    finally:
        await sub.unsubscribe()


async def test_a_deleted_work_consumer_is_created_again_and_work_goes_on(
    bus: Bus, work_consumer_removed: None
) -> None:
    """The server ends the standing request when the consumer is deleted (409): the
    consumer is bound again, not left waiting on a request that will never deliver."""
    async with ConsumerRun(bus, max_parallel=2) as run:
        await bus.js.publish(subjects.work("cli", "local"), b"before")
        await eventually(lambda: run.handled == [b"before"], what="first handled")

        async def acked() -> bool:  # else the new consumer delivers "before" again
            return (await consumer_state(bus))[:2] == (0, 0)

        await eventually(acked, what="first acked")
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)
        await bus.js.publish(subjects.work("cli", "local"), b"after")
        await eventually(lambda: run.handled == [b"before", b"after"], 10, what="rebound")


async def test_work_after_an_idle_spell_starts_at_once_one_task_after_another(
    bus: Bus, start_executor: StartExecutor
) -> None:
    """After the executor sat idle, each task starts as it comes. A batch fetch, once its
    waiting request got the first task, held the next one until its 2 s timeout or the
    server's "no messages" (seen as a second task taking 1-2 s after 3-8 s idle)."""
    completed: list[str] = []

    async def coordinator(msg: Msg) -> None:  # accepts every claim and report
        if msg.subject == CompleteTask.SUBJECT:
            completed.append(json.loads(msg.data)["task_id"])
        await msg.respond(CommandReply.accept().model_dump_json().encode())

    subs = [
        await bus.nc.subscribe(StartTask.SUBJECT, cb=coordinator),
        await bus.nc.subscribe(CompleteTask.SUBJECT, cb=coordinator),
    ]
    try:
        executor = start_executor("t-idle", WHOOSH__EXECUTOR__ACK_WAIT_S="30")
        await eventually(lambda: "executor ready" in executor.output(), 30, what="executor ready")
        worst = []
        for _ in range(4):  # the stall was as long as what was left of a fetch: 0-2 s
            await asyncio.sleep(2.5)  # idle: the executor's fetches wait and time out
            took = []
            for _ in range(3):
                item = work_item(["true"])
                sent = time.monotonic()
                await bus.js.publish(subjects.work("cli", "local"), item.model_dump_json().encode())
                await eventually(lambda item=item: str(item.task_id) in completed, what="ran")
                took.append(time.monotonic() - sent)
            worst.append(max(took))
        # each task ran at once; four stalls of 0-2 s would add up to more (p < 2 %)
        assert sum(worst) < 1.5, worst
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def test_invalid_work_is_terminated_not_redelivered(
    bus: Bus, start_executor: StartExecutor
) -> None:
    executor = start_executor("t-invalid", WHOOSH__EXECUTOR__ACK_WAIT_S="1")
    await eventually(lambda: "executor ready" in executor.output(), 30, what="executor ready")
    before = (await consumer_state(bus))[2]
    await bus.js.publish(subjects.work("cli", "local"), b'{"not": "a work item"}')
    await eventually(
        lambda: "dropping an invalid work message" in executor.output(), what="drop logged"
    )
    await asyncio.sleep(1.5)  # past ack_wait: a message left unacked would come back
    ack_pending, undelivered, redelivered = await consumer_state(bus)
    assert (ack_pending, undelivered, redelivered) == (0, 0, before)
    assert executor.proc is not None and executor.proc.poll() is None


async def test_work_waits_in_the_stream_while_no_coordinator_answers(
    bus: Bus, start_executor: StartExecutor
) -> None:
    """StartTask cannot be delivered: the message is handed back (NAK with a delay), never lost,
    and nothing is run."""
    executor = start_executor("t-nocoord", WHOOSH__EXECUTOR__ACK_WAIT_S="30")
    await eventually(lambda: "executor ready" in executor.output(), 30, what="executor ready")
    item = work_item(["sh", "-c", "echo must-not-run"])
    await bus.js.publish(subjects.work("cli", "local"), item.model_dump_json().encode())

    async def redelivered_twice() -> bool:
        info = await bus.js.consumer_info(subjects.WORK_STREAM, DURABLE_NAME)
        return info.delivered.stream_seq >= 1 and executor.output().count("cannot start task") >= 2

    # ack_wait is 30 s: a second delivery within seconds can only come from the NAK delay
    await eventually(redelivered_twice, timeout=8, what="NAK and redelivery")
    stream = await bus.js.stream_info(subjects.WORK_STREAM)
    assert stream.state.messages == 1  # still there for when a coordinator answers
    assert "must-not-run" not in executor.output()
    assert "task started" not in executor.output()


async def test_a_command_started_before_its_claim_is_killed_when_the_claim_is_refused(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    """The executor starts a local command while its StartTask is on the way; the command
    gets its prompt only with the accepted claim, so a refused one (the task was cancelled
    meanwhile) leaves it killed without ever having acted on the task."""
    started, got = tmp_path / "started", tmp_path / "got"
    claims: list[str] = []

    async def refuse(msg: Msg) -> None:
        # answered only once the command runs: it was started before its claim was answered
        await eventually(started.exists, what="the command started before the answer")
        claims.append(msg.data.decode())
        reply = CommandReply.reject(RejectCode.BAD_STATE, "task cancelled")
        await msg.respond(reply.model_dump_json().encode())

    sub = await bus.nc.subscribe(StartTask.SUBJECT, cb=refuse)
    try:
        executor = start_executor("t-early", WHOOSH__EXECUTOR__ACK_WAIT_S="30")
        await eventually(lambda: "executor ready" in executor.output(), 30, what="executor ready")
        command = ["sh", "-c", f"touch {started}; read -r line; echo $line > {got}"]
        item = work_item(command)
        await bus.js.publish(subjects.work("cli", "local"), item.model_dump_json().encode())
        await eventually(lambda: "task not started" in executor.output(), what="claim refused")

        async def acked() -> bool:
            return (await consumer_state(bus))[:2] == (0, 0)

        await eventually(acked, what="the work message acked (nothing to run)")
        await asyncio.sleep(0.3)
        assert len(claims) == 1
        assert not got.exists()  # never given the prompt
        assert "task started" not in executor.output()
    finally:
        await sub.unsubscribe()


async def test_with_start_before_claim_off_nothing_starts_before_the_claim_is_answered(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    """`executor.start_before_claim: false`, for commands that act without reading their
    prompt: a refused claim leaves no trace of the command at all."""
    started = tmp_path / "started"
    seen_before_answer: list[bool] = []

    async def refuse(msg: Msg) -> None:
        await asyncio.sleep(0.5)  # time enough for an early start to show
        seen_before_answer.append(started.exists())
        reply = CommandReply.reject(RejectCode.BAD_STATE, "task cancelled")
        await msg.respond(reply.model_dump_json().encode())

    sub = await bus.nc.subscribe(StartTask.SUBJECT, cb=refuse)
    try:
        executor = start_executor(
            "t-late",
            WHOOSH__EXECUTOR__START_BEFORE_CLAIM="false",
            WHOOSH__EXECUTOR__ACK_WAIT_S="30",
        )
        await eventually(lambda: "executor ready" in executor.output(), 30, what="executor ready")
        item = work_item(["touch", str(started)])
        await bus.js.publish(subjects.work("cli", "local"), item.model_dump_json().encode())
        await eventually(lambda: "task not started" in executor.output(), what="claim refused")
        await asyncio.sleep(0.3)
        assert seen_before_answer == [False]
        assert not started.exists()
    finally:
        await sub.unsubscribe()
