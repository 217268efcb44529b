"""The bus adapter's promises: bounded connects, several servers, clear request errors."""

from __future__ import annotations

import re
import time

import pytest
from whoosh_shared.contract.commands import SubmitTask
from whoosh_shared.runtime.bus import Bus, BusError


async def test_connects_through_a_list_that_starts_with_a_dead_server(nats_url: str) -> None:
    bus = Bus(f"nats://127.0.0.1:1, {nats_url}", "test")
    await bus.connect(timeout=5)
    assert bus.nc.is_connected
    await bus.close()


async def test_unreachable_nats_fails_within_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(BusError, match=re.escape("cannot connect to NATS at nats://127.0.0.1:1")):
        await Bus("nats://127.0.0.1:1", "test").connect(timeout=1)
    assert time.monotonic() - started < 5


async def test_a_command_nobody_answers_is_a_clear_error(nats_url: str) -> None:
    bus = Bus(nats_url, "test")
    await bus.connect()
    with pytest.raises(
        BusError, match=re.escape("no coordinator is answering on whoosh.cmd.task.submit")
    ):
        await bus.send(SubmitTask(prompt="x"), timeout=1)
    await bus.close()


async def test_a_report_that_lost_races_to_another_coordinator_is_sent_again(
    nats_url: str,
) -> None:
    """A CONFLICT rejection is no verdict on the report: acking the work on it would lose
    the result, so the executor sends the report again until it gets one."""
    import asyncio
    from uuid import uuid4

    from whoosh_shared.contract.commands import CommandReply, CompleteTask, RejectCode
    from whoosh_shared.runtime.bus import send_until_answered

    bus = Bus(nats_url, "test")
    await bus.connect()
    seen: list[bytes] = []

    async def coordinator(msg) -> None:
        seen.append(msg.data)
        reply = (
            CommandReply.reject(RejectCode.CONFLICT, "kept conflicting")
            if len(seen) == 1
            else CommandReply.accept(task_id="t")
        )
        await msg.respond(reply.model_dump_json().encode())

    await bus.nc.subscribe(CompleteTask.SUBJECT, cb=coordinator)
    report = CompleteTask(task_id=uuid4(), attempt=1, output="done")
    reply = await asyncio.wait_for(send_until_answered(bus, report, asyncio.Event()), 10)
    assert reply is not None and reply.accepted
    assert len(seen) == 2
    await bus.close()


async def test_a_report_the_coordinator_took_and_never_answered_is_sent_again(
    nats_url: str, monkeypatch
) -> None:
    """A coordinator killed after reading a report answers nothing; the report's request
    times out on its own (short first, then longer) and goes again, to the restarted
    coordinator, instead of waiting out the bus's 10 s default."""
    import asyncio
    from uuid import uuid4

    from whoosh_shared.contract.commands import CommandReply, CompleteTask
    from whoosh_shared.runtime import bus as bus_module

    monkeypatch.setattr(bus_module, "REPORT_TIMEOUT_FIRST_S", 0.3)
    bus = Bus(nats_url, "test")
    await bus.connect()
    seen: list[bytes] = []

    async def coordinator(msg) -> None:
        seen.append(msg.data)
        if len(seen) > 1:  # the first copy reached a coordinator that then died
            await msg.respond(CommandReply.accept(task_id="t").model_dump_json().encode())

    await bus.nc.subscribe(CompleteTask.SUBJECT, cb=coordinator)
    report = CompleteTask(task_id=uuid4(), attempt=1, output="done")
    reply = await asyncio.wait_for(bus_module.send_until_answered(bus, report, asyncio.Event()), 5)
    assert reply is not None and reply.accepted
    assert len(seen) == 2 and seen[0] == seen[1]
    await bus.close()
