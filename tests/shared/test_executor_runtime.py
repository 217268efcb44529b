"""The executors' shared runtime: serving their consumers, an orderly stop, and reporting an
attempt before its ack (against the session nats-server; an executor of its own kind)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CommandReply, CompleteTask, RejectCode, Usage
from whoosh_shared.contract.config import ExecutorSettings, load_config
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import Heartbeat
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.executor_runtime import (
    ExecutorContext,
    ExecutorRuntime,
    default_executor_id,
    report_and_ack,
)
from whoosh_shared.runtime.logs import JsonFormatter
from whoosh_shared.runtime.loop_reports import LoopReport
from whoosh_shared.runtime.progress import ProgressPublisher
from whoosh_shared.runtime.work_queue import MessageHandler, WorkConsumer

DURABLE = "test-executor-runtime"


class ToyExecutor(ExecutorRuntime[ExecutorContext[Any]]):
    """An executor that acks every work message it is handed, and notes its life."""

    bus_name = "whoosh-test-executor"
    id_prefix = "toy"
    durables = {AgentType.OPENAI: DURABLE}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []
        self.handled: list[WorkItem] = []

    def _context(self, progress: ProgressPublisher) -> ExecutorContext[Any]:
        return ExecutorContext(
            bus=self.bus, executor_id=self.executor_id, settings=self.settings, progress=progress
        )

    def _handler(self, ctx: ExecutorContext[Any]) -> MessageHandler:
        async def handle(msg: Msg) -> None:
            self.handled.append(WorkItem.model_validate_json(msg.data))
            await msg.ack()

        return handle

    @asynccontextmanager
    async def _alongside(self, ctx: ExecutorContext[Any]) -> AsyncIterator[None]:
        self.seen.append("alongside started")
        try:
            yield
        finally:
            self.seen.append("alongside stopped")

    async def _close_context(self, ctx: ExecutorContext[Any]) -> None:
        self.seen.append("context closed")


class DyingFetchExecutor(ToyExecutor):
    """Its fetch loop dies at its first two starts, then fetches as usual."""

    async def _bind_consumers(self, handler: MessageHandler) -> list[WorkConsumer]:
        consumers = await super()._bind_consumers(handler)
        fetch = consumers[0].run
        deaths = 0

        async def die_twice() -> None:
            nonlocal deaths
            if deaths < 2:
                deaths += 1
                raise RuntimeError("the fetch loop died")
            await fetch()

        consumers[0].run = die_twice  # type: ignore[method-assign]
        return consumers


@pytest.fixture
async def toy_consumer_removed(bus: Bus) -> AsyncIterator[None]:
    """A work-queue stream allows one consumer per subject: leave none behind."""
    yield
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def work_item() -> WorkItem:
    agent = AgentSpec(name="toy", type=AgentType.OPENAI, endpoint="http://127.0.0.1:1")
    return WorkItem(task_id=uuid.uuid4(), attempt=1, agent=agent, prompt="hi", timeout_s=5)


def test_the_default_executor_id_names_the_host_and_process() -> None:
    prefix, *_, pid = default_executor_id("toy").split("-")
    assert prefix == "toy" and pid.isdigit()


def test_the_command_line_wins_over_the_configuration() -> None:
    environ = {"WHOOSH_CONFIG": os.devnull, "WHOOSH__NATS__URL": "nats://configured:4222"}
    config = load_config(environ=environ)
    configured = ToyExecutor.from_config(config, None, None)
    assert configured.nats_url == "nats://configured:4222"
    assert configured.executor_id.startswith("toy-")
    given = ToyExecutor.from_config(config, "nats://given:1", "toy-1")
    assert (given.nats_url, given.executor_id) == ("nats://given:1", "toy-1")


def test_a_second_stop_request_stops_waiting_for_reports() -> None:
    executor = ToyExecutor("nats://127.0.0.1:1", ExecutorSettings(), "toy-1")
    executor.ctx = executor._context(None)  # type: ignore[arg-type]  # never started
    executor.request_stop()
    assert not executor.ctx.abandon_reports.is_set()
    executor.request_stop()
    assert executor.ctx.abandon_reports.is_set()


async def test_it_serves_its_consumers_then_stops_in_order(
    bus: Bus, nats_url: str, toy_consumer_removed: None
) -> None:
    executor = ToyExecutor(nats_url, ExecutorSettings(), "toy-serving")
    beats: list[Heartbeat] = []

    async def on_beat(msg: Msg) -> None:
        beats.append(Heartbeat.model_validate_json(msg.data))

    sub = await bus.nc.subscribe(subjects.heartbeat("toy-serving"), cb=on_beat)
    running = asyncio.create_task(executor.run())
    try:
        await until(lambda: bool(beats))
        assert beats[0].agent_types == [AgentType.OPENAI]
        item = work_item()
        await bus.js.publish(subjects.work("openai", "toy"), item.model_dump_json().encode())
        await until(lambda: bool(executor.handled))
        assert executor.handled[0].task_id == item.task_id
        assert executor.seen == ["alongside started"]
    finally:
        executor.request_stop()
        await asyncio.wait_for(running, timeout=15)
        await sub.unsubscribe()
    assert executor.seen == ["alongside started", "alongside stopped", "context closed"]
    assert executor.ctx is not None and executor.ctx.stopping.is_set()


async def test_a_dead_fetch_loop_is_restarted_reported_down_and_work_goes_on(
    bus: Bus, nats_url: str, toy_consumer_removed: None, caplog: pytest.LogCaptureFixture
) -> None:
    executor = DyingFetchExecutor(nats_url, ExecutorSettings(heartbeat_interval_s=0.2), "toy-dying")
    reports: list[LoopReport] = []

    async def on_report(msg: Msg) -> None:
        reports.append(LoopReport.model_validate_json(msg.data))

    sub = await bus.nc.subscribe(subjects.loops("toy-dying"), cb=on_report)
    running = asyncio.create_task(executor.run())
    try:
        name = f"fetch {DURABLE}"
        await until(lambda: any(name in r.down for r in reports))
        down = next(r.down[name] for r in reports if name in r.down)
        assert down == "RuntimeError: the fetch loop died"
        await bus.js.publish(subjects.work("openai", "toy"), work_item().model_dump_json().encode())
        await until(lambda: len(executor.handled) == 1, timeout=30)
        assert executor.health.loops[name].restarts == 2
        await until(lambda: executor.health.down_now() == {} and reports[-1].down == {})
    finally:
        executor.request_stop()
        await asyncio.wait_for(running, timeout=15)
        await sub.unsubscribe()
    died = [r for r in caplog.records if r.levelno == logging.ERROR and name in r.getMessage()]
    assert len(died) == 2 and "the fetch loop died" in died[0].getMessage()
    assert executor.seen == ["alongside started", "alongside stopped", "context closed"]


class AnsweringBus:
    def __init__(self, reply: CommandReply) -> None:
        self.reply = reply
        self.sent: list[object] = []

    async def send(self, command: object, timeout: float = 10.0) -> CommandReply:
        self.sent.append(command)
        return self.reply


class AckedMsg:
    def __init__(self) -> None:
        self.acked = False

    def ack(self) -> Awaitable[None]:
        async def ack() -> None:
            self.acked = True

        return ack()


def context_on(bus: AnsweringBus) -> ExecutorContext[Any]:
    return ExecutorContext(
        bus=bus,  # type: ignore[arg-type]  # only send is used
        executor_id="toy",
        settings=ExecutorSettings(),
        progress=None,  # type: ignore[arg-type]  # not used in reports
    )


async def test_a_report_is_acked_once_answered_and_logged_with_the_executors_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = work_item()
    command = CompleteTask(task_id=item.task_id, attempt=1, output="x", usage=Usage())
    bus = AnsweringBus(CommandReply.reject(RejectCode.BAD_STATE, "task ended"))
    msg = AckedMsg()
    log = logging.getLogger("whoosh_toy.attempt")
    with caplog.at_level(logging.INFO, logger="whoosh_toy.attempt"):
        await report_and_ack(
            context_on(bus), msg, item, command, log=log, outcome="completed", duration_s=0.5
        )
    assert bus.sent == [command] and msg.acked
    [record] = [r for r in caplog.records if r.name == "whoosh_toy.attempt"]
    line = json.loads(JsonFormatter("toy").format(record))
    assert list(line)[3:] == [
        "logger",
        "msg",
        "task_id",
        "attempt",
        "result",
        "outcome",
        "duration_s",
        "reply",
    ]
    assert line["msg"] == "task finished" and line["logger"] == "whoosh_toy.attempt"
    assert line["result"] == "CompleteTask" and line["reply"] == "rejected: task ended"


async def test_a_report_unanswered_at_shutdown_leaves_the_message_unacked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = work_item()
    command = CompleteTask(task_id=item.task_id, attempt=1, output="x", usage=Usage())
    ctx = context_on(AnsweringBus(CommandReply.accept()))
    ctx.abandon_reports.set()
    msg = AckedMsg()
    log = logging.getLogger("whoosh_toy.attempt")
    await report_and_ack(ctx, msg, item, command, log=log)
    assert not msg.acked
    [record] = [r for r in caplog.records if r.name == "whoosh_toy.attempt"]
    assert record.getMessage() == "report unanswered at shutdown; work will be redelivered"
