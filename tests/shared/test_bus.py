"""The bus adapter's promises: bounded connects, several servers, clear request errors."""

from __future__ import annotations

import re
import time

import pytest
from whoosh_shared.bus import Bus, BusError
from whoosh_shared.commands import SubmitTask


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
