"""FindAgents: the scheduler's rules as a dry run, with a reason for every agent left out."""

from __future__ import annotations

from coordinator.factories import agent_view
from whoosh_coordinator.agent_finder import find_agents
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.scheduler import Needs, choose
from whoosh_shared.agent_fit import AgentFits, FindAgents
from whoosh_shared.inventory import Inventory, ModelFacts


def fits(query: FindAgents, agents) -> dict[str, tuple[bool, int | None, str | None]]:
    answer = find_agents(query, agents)
    return {fit.name: (fit.eligible, fit.rank, fit.reason) for fit in answer.agents}


def test_each_rule_names_its_reason() -> None:
    agents = [
        agent_view("cli", capabilities=["python"]),
        agent_view("off", capabilities=["python"], enabled=False),
        agent_view("llm", type="ollama", endpoint="http://x", model="m1", capabilities=["chat"]),
    ]
    by_capability = fits(FindAgents(capabilities=["python"]), agents)
    assert by_capability == {
        "cli": (True, 1, None),
        "off": (False, None, "disabled"),
        "llm": (False, None, "it lacks capability 'python'"),
    }
    typed = fits(FindAgents(agent_type="ollama"), agents)
    assert typed["cli"][2] == "it is a cli agent; the task needs ollama"
    assert typed["llm"] == (True, 1, None)
    assert fits(FindAgents(agent="llm"), agents)["cli"][2] == "the task is pinned to agent 'llm'"
    assert fits(FindAgents(model="m2"), agents)["llm"][2] == "its server does not have model 'm2'"


def test_context_length_and_unreachable_servers() -> None:
    inventory = Inventory(reachable=True, models={"m1": ModelFacts(context_length=10)})
    small = agent_view("small", type="ollama", endpoint="http://x", model="m1")
    small = small.model_copy(update={"inventory": inventory})
    down = agent_view("down", type="ollama", endpoint="http://y", model="m1")
    down = down.model_copy(update={"inventory": Inventory(reachable=False, reason="refused")})
    answer = fits(FindAgents(prompt="x" * 400), [small, down])
    assert answer["small"][2] == "the prompt (~100 tokens) exceeds its context of 10"
    assert answer["down"][2] == "unreachable: refused"


def test_ranked_as_the_scheduler_would_choose_free_agents_before_full_ones() -> None:
    full = agent_view("full", load=1, capabilities=["py"])
    busy = agent_view("busy", load=1, max_concurrent=4, capabilities=["py"])
    idle = agent_view("idle", max_concurrent=4, capabilities=["py"])
    answer = find_agents(FindAgents(capabilities=["py"]), [full, busy, idle])
    assert [(f.name, f.rank, f.free_slots) for f in answer.agents] == [
        ("idle", 1, 4),
        ("busy", 2, 3),
        ("full", 3, 0),
    ]
    load = {a.id: a.load for a in (full, busy, idle)}
    chosen = choose(Needs(capabilities=("py",)), [full, busy, idle], load)
    assert chosen is not None and chosen.spec.name == "idle"


def test_answered_on_the_query_subject_and_bad_queries_are_refused() -> None:
    handler = QueryHandler(FleetProjection())
    ok = handler.handle_raw(FindAgents.SUBJECT, b'{"capabilities": ["x"]}')
    assert ok.status == "ok" and AgentFits.model_validate(ok.result).agents == []
    bad = handler.handle_raw(FindAgents.SUBJECT, b'{"capabilities": ["NOT VALID"]}')
    assert bad.status == "error" and bad.code == "invalid" and "capabilities" in bad.reason
