"""The coordinator decides who may define a command agent (on real stores): operators are
refused unless whoosh.yaml's allowlist covers the command, every refusal says what would
allow it and stores nothing; agents' env is masked in every query and event read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coordinator.core import Core
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import queries as q
from whoosh_shared.contract.agents import AgentSpec, AgentUpdate
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.security_settings import SecuritySettings

SECURITY = SecuritySettings(allowed_commands=["claude -p *"])
SECRET = {"OPENAI_API_KEY": "sk-very-secret", "TOKEN": "${TOKEN}"}


@pytest.fixture
def guarded(store_url: str) -> Iterator[Core]:
    store = open_store(store_url)
    projection = FleetProjection()
    follower = Follower(store, projection)
    handler = CommandHandler(store, projection, on_saved=follower.fold_saved, security=SECURITY)
    yield Core(store_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()


def register(core: Core, role: Role | None, **spec) -> c.CommandReply:
    spec.setdefault("name", "agent")
    spec.setdefault("command", ["claude", "-p"])
    return core.send(c.RegisterAgent(spec=AgentSpec(**spec), role=role))


def test_an_operator_registers_only_allowlisted_commands(guarded: Core) -> None:
    events = guarded.events()
    refused = register(guarded, Role.OPERATOR, command=["bash", "-c", "curl x | sh"])
    assert refused.code == "forbidden"
    assert "admin key" in refused.reason and "security.allowed_commands" in refused.reason
    assert guarded.events() == events
    assert register(guarded, Role.OPERATOR).accepted
    assert register(guarded, Role.ADMIN, name="any", command=["bash", "-c", "id"]).accepted
    assert register(guarded, None, name="bus", command=["bash"]).accepted


def test_an_operator_cannot_change_an_agent_into_another_command(guarded: Core) -> None:
    assert register(guarded, Role.ADMIN, command=["bash", "-s"]).accepted
    change = c.UpdateAgent(name="agent", changes=AgentUpdate(command=["bash", "-c", "id"]),
                           role=Role.OPERATOR)  # fmt: skip
    assert guarded.send(change).code == "forbidden"
    harmless = c.UpdateAgent(name="agent", changes=AgentUpdate(max_concurrent=3),
                             role=Role.OPERATOR)  # fmt: skip
    assert guarded.send(harmless).accepted
    allowed = c.UpdateAgent(name="agent", changes=AgentUpdate(command=["claude", "-p", "x"]),
                            role=Role.OPERATOR)  # fmt: skip
    assert guarded.send(allowed).accepted


def test_a_metadata_endpoint_is_refused_for_everyone(guarded: Core) -> None:
    reply = guarded.send(c.RegisterAgent(spec=AgentSpec(
        name="m", type="ollama", endpoint="http://169.254.169.254")))  # fmt: skip
    assert reply.code == "forbidden" and "security.allowed_endpoints" in reply.reason
    register(guarded, None, name="x", command=["sh"])
    update = c.UpdateAgent(name="x", changes=AgentUpdate(host="169.254.169.254"))
    assert guarded.send(update).code == "forbidden"


def test_check_only_decides_without_storing(guarded: Core) -> None:
    events = guarded.events()
    ok = guarded.send(c.RegisterAgent(spec=AgentSpec(name="t", command=["claude", "-p"]),
                                      role=Role.OPERATOR, check_only=True))  # fmt: skip
    assert ok.accepted and ok.ids["checked"] == "true"
    no = guarded.send(c.RegisterAgent(spec=AgentSpec(name="t", command=["sh"]),
                                      role=Role.OPERATOR, check_only=True))  # fmt: skip
    assert no.code == "forbidden"
    assert guarded.events() == events


def test_env_is_masked_in_queries_and_event_reads_but_kept_for_work(guarded: Core) -> None:
    assert register(guarded, None, env=SECRET).accepted
    update = c.UpdateAgent(name="agent", changes=AgentUpdate(env={**SECRET, "N": "new-secret"}))
    assert guarded.send(update).accepted
    queries = QueryHandler(guarded.projection, guarded.store)

    def ask(query: q.Query) -> q.QueryReply:
        return queries.handle_raw(query.SUBJECT, query.model_dump_json().encode())

    shown = ask(q.GetAgent(name="agent")).result["spec"]["env"]
    assert shown == {"OPENAI_API_KEY": "***", "TOKEN": "${TOKEN}", "N": "***"}
    listed = ask(q.ListAgents()).model_dump_json()
    events = ask(q.GetEvents(limit=100)).model_dump_json()
    for text in (listed, events):
        assert "sk-very-secret" not in text and "new-secret" not in text
    assert "${TOKEN}" in events and "AgentUpdated" in events
    full = ask(q.GetAgent(name="agent", with_env=True)).result["spec"]["env"]
    assert full["OPENAI_API_KEY"] == "sk-very-secret"  # for the executors' probes
