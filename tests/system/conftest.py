"""Fixtures for end-to-end tests: Ollama doubles (from the executor_ollama layer) with a
coordinator + LLM executor, and a coordinator + CLI executor for remote (SSH) agents."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from executor_ollama.double_fixtures import make_double
from harness import ServiceProcess, eventually, wait_for_coordinator
from nats.js.errors import NotFoundError
from system.llm_stack import NO_CONFIG_FILE
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_executor_ollama.service import DURABLES
from whoosh_shared.contract import subjects
from whoosh_shared.runtime.bus import Bus

__all__ = ["make_double"]  # a fixture, found here by pytest


@pytest.fixture
def executor_env() -> dict[str, str]:
    """Extra environment for the LLM executor; a test module overrides it (e.g. to probe
    servers often)."""
    return {}


@pytest.fixture
async def llm_system(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, executor_env: dict[str, str]
) -> AsyncIterator[ServiceProcess]:
    """A coordinator on a fresh SQLite store and one LLM executor, ready; afterwards the
    executor is stopped and its durable consumers removed (one consumer per subject)."""
    spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )
    executor: ServiceProcess = spawn(
        "whoosh_executor_ollama",
        "--nats",
        nats_url,
        "--executor-id",
        "llm-test",
        env={**NO_CONFIG_FILE, "WHOOSH__EXECUTOR__ACK_WAIT_S": "5", **executor_env},
    )
    await wait_for_coordinator(bus)
    await eventually(
        lambda: "executor ready" in executor.output(), timeout=20, what="the LLM executor"
    )
    try:
        yield executor
    finally:
        executor.stop()
        for durable in DURABLES.values():
            with contextlib.suppress(NotFoundError):
                await bus.js.delete_consumer(subjects.WORK_STREAM, durable)


@pytest.fixture
async def ssh_system(
    bus: Bus, spawn, nats_url: str, sqlite_url: str
) -> AsyncIterator[ServiceProcess]:
    """A coordinator on a fresh SQLite store and one CLI executor, both ready."""
    spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )
    executor: ServiceProcess = spawn(
        "whoosh_executor_cli",
        "--nats",
        nats_url,
        "--executor-id",
        "ssh-test",
        env={**NO_CONFIG_FILE, "WHOOSH__EXECUTOR__KILL_GRACE_S": "1"},
    )
    await wait_for_coordinator(bus)
    await eventually(lambda: "executor ready" in executor.output(), timeout=20, what="executor")
    yield executor
    executor.stop()
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)
