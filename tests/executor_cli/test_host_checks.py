"""Connectivity of CLI agents as the rest of WHOOSH sees it: a registration test answered
on the bus, and periodic reports that take an unreachable host out of rotation. Real
sshd, real nats-server, and (for the reports) a real coordinator process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from executor_cli.sshd_server import SshdFactory, SshdServer, sshd_factory_fixture
from harness import free_port, wait_for_coordinator
from whoosh_executor_cli.host_checks import HostReporter, ProbeResponder, check_agent
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.connectivity import ProbeAgent, ProbeReply
from whoosh_shared.contract.queries import AgentView, GetAgent
from whoosh_shared.runtime.bus import Bus

__all__ = ["sshd_factory_fixture"]  # the fixture, found here by pytest

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}


@pytest.fixture
async def responder(bus: Bus) -> AsyncIterator[ProbeResponder]:
    answering = ProbeResponder(bus.nc)
    await answering.start()
    yield answering
    await answering.stop()


async def ask(bus: Bus, spec: AgentSpec) -> ProbeReply:
    request = ProbeAgent(spec=spec).model_dump_json().encode()
    msg = await bus.nc.request(subjects.probe("cli"), request, timeout=30)
    return ProbeReply.model_validate_json(msg.data)


async def test_the_registration_test_names_each_cause(
    bus: Bus, responder: ProbeResponder, sshd_factory: SshdFactory
) -> None:
    server = sshd_factory()
    ok = await ask(bus, server.agent("ok", ["sh", "-s"]))
    assert ok.ok and ok.detail.startswith("/") and f":{server.port}" in ok.detail
    missing = await ask(bus, server.agent("nope", ["whoosh-no-such-cli"]))
    assert not missing.ok and missing.detail.startswith("command_not_found:")
    closed = server.agent("closed", ["sh"], ssh=server.settings(port=free_port()))
    unreachable = await ask(bus, closed)
    assert not unreachable.ok and unreachable.detail.startswith("host_unreachable:")


async def test_a_local_agent_is_checked_on_the_executors_path() -> None:
    assert (await check_agent(AgentSpec(name="l", command=["sh", "-c", "true"]))).ok
    missing = await check_agent(AgentSpec(name="m", command=["whoosh-no-such-cli"]))
    assert not missing.ok and "not on the executor's PATH" in missing.detail


async def test_a_malformed_request_gets_an_answer_not_silence(
    bus: Bus, responder: ProbeResponder
) -> None:
    msg = await bus.nc.request(subjects.probe("cli"), b'{"spec": 42}', timeout=10)
    reply = ProbeReply.model_validate_json(msg.data)
    assert not reply.ok and reply.detail.startswith("invalid ProbeAgent request")


async def agent_view(bus: Bus, name: str) -> AgentView:
    reply = await bus.ask(GetAgent(name=name))
    assert reply.status == "ok", reply.reason
    return AgentView.model_validate(reply.result)


async def test_periodic_reports_take_a_dead_host_out_of_rotation_and_back(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, sshd_factory: SshdFactory
) -> None:
    spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )
    await wait_for_coordinator(bus)
    server: SshdServer = sshd_factory()
    spec = server.agent("remote", ["sh", "-s"])
    assert (await bus.send(RegisterAgent(spec=spec))).accepted
    reporter = HostReporter(bus, ExecutorSettings(probe_timeout_s=5))

    assert (await reporter.report_once())["remote"].reachable
    view = await agent_view(bus, "remote")
    assert view.inventory is not None and view.inventory.reachable and view.in_rotation

    server.stop()
    try:
        found = await reporter.report_once()
        assert not found["remote"].reachable
        view = await agent_view(bus, "remote")
        assert not view.in_rotation
        assert view.inventory is not None and (view.inventory.reason or "").startswith(
            "host_unreachable:"
        )
    finally:
        server.start()
    assert (await reporter.report_once())["remote"].reachable
    assert (await agent_view(bus, "remote")).in_rotation
