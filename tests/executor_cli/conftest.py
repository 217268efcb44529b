"""Fixtures for executor tests that run executor processes against the session nats-server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable

import pytest
from harness import ServiceProcess
from nats.js.errors import NotFoundError
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.runtime.bus import Bus

StartExecutor = Callable[..., ServiceProcess]


async def delete_work_consumer(bus: Bus) -> None:
    """Remove the executors' durable consumer, so no other test finds `whoosh.work.cli.>` taken
    (a work-queue stream allows one consumer per subject)."""
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)


@pytest.fixture
async def start_executor(bus: Bus, nats_url: str, spawn) -> AsyncIterator[StartExecutor]:
    """Start `python -m whoosh_executor_cli` processes; afterwards they are stopped and their
    consumer removed."""
    started: list[ServiceProcess] = []

    def start(executor_id: str, **env: str) -> ServiceProcess:
        proc = spawn(
            "whoosh_executor_cli",
            "--nats",
            nats_url,
            "--executor-id",
            executor_id,
            # services start in the repository root: keep its example whoosh.yaml out
            env={"WHOOSH_CONFIG": os.devnull, **env},
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    await delete_work_consumer(bus)


@pytest.fixture
async def work_consumer_removed(bus: Bus) -> AsyncIterator[None]:
    yield
    await delete_work_consumer(bus)
