"""Registering a remote CLI agent (from whoosh.yaml or `whoosh agent add`) first asks an
executor whether it can reach it: a dead agent is refused with the cause, not registered.
Real sshd, nats-server and coordinator; the executor's probe answering on the bus."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from executor_cli.sshd_server import SshdFactory, sshd_factory_fixture
from harness import free_port, wait_for_coordinator
from whoosh_cli.agent_sync import register_tested, sync_agent
from whoosh_executor_cli.host_checks import ProbeResponder
from whoosh_shared.contract.connectivity import FAILED_TEST_CODE
from whoosh_shared.contract.queries import GetAgent
from whoosh_shared.runtime.bus import Bus

__all__ = ["sshd_factory_fixture"]  # the fixture, found here by pytest


@pytest.fixture
async def coordinator(bus: Bus, spawn, nats_url: str, sqlite_url: str) -> AsyncIterator[None]:
    env = {"WHOOSH_CONFIG": os.devnull}
    spawn("whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=env)
    await wait_for_coordinator(bus)
    yield


async def test_an_unreachable_agent_is_refused_with_the_cause_and_not_registered(
    bus: Bus, coordinator: None, sshd_factory: SshdFactory
) -> None:
    server = sshd_factory()
    responder = ProbeResponder(bus.nc)
    await responder.start()
    try:
        dead = server.agent("dead-host", ["sh", "-s"], ssh=server.settings(port=free_port()))
        reply = await register_tested(bus, dead, actor="test")
        assert reply.code == FAILED_TEST_CODE
        assert "connectivity test failed: host_unreachable:" in (reply.reason or "")
        assert (await bus.ask(GetAgent(name="dead-host"))).status == "error"
        no_cli = server.agent("no-cli", ["whoosh-no-such-cli"])
        outcome = await sync_agent(bus, no_cli)
        assert not outcome.ok and "command_not_found" in outcome.detail
        alive = await sync_agent(bus, server.agent("alive", ["sh", "-s"]))
        assert alive.ok and alive.action == "registered"
    finally:
        await responder.stop()


async def test_with_no_executor_to_ask_the_agent_is_registered_untested(
    bus: Bus, coordinator: None, sshd_factory: SshdFactory
) -> None:
    server = sshd_factory()
    spec = server.agent("untested", ["sh", "-s"], ssh=server.settings(port=free_port()))
    assert (await register_tested(bus, spec, actor="test")).accepted
