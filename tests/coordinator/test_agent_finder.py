"""FindAgents: the scheduler's explanation for needs without a task, with a reason for
every agent left out, answered on its query subject."""

from __future__ import annotations

from coordinator.factories import agent_view
from whoosh_coordinator.agents.finder import find_agents, needs_of
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.scheduling.scheduler import choose
from whoosh_shared.contract.agent_fit import FindAgents
from whoosh_shared.contract.explain import Explanation
from whoosh_shared.contract.inventory import Inventory, ModelFacts


def verdicts(query: FindAgents, agents) -> dict[str, tuple[bool, str | None]]:
    answer = find_agents(query, agents)
    return {a.agent: (a.eligible, a.reason) for a in answer.agents}


def test_each_rule_names_its_reason() -> None:
    agents = [
        agent_view("cli", capabilities=["python"]),
        agent_view("off", capabilities=["python"], enabled=False),
        agent_view("llm", type="ollama", endpoint="http://x", model="m1", capabilities=["chat"]),
    ]
    assert verdicts(FindAgents(capabilities=["python"]), agents) == {
        "cli": (True, None),
        "off": (False, "disabled"),
        "llm": (False, "it lacks capability 'python'"),
    }
    typed = verdicts(FindAgents(agent_type="ollama"), agents)
    assert typed["cli"] == (False, "it is a cli agent; the task needs ollama")
    assert typed["llm"] == (True, None)
    assert verdicts(FindAgents(agent="llm"), agents)["cli"][1] == (
        "the task is pinned to agent 'llm'"
    )
    assert verdicts(FindAgents(model="m2"), agents)["llm"][1] == (
        "its server does not have model 'm2'"
    )


def test_context_length_and_unreachable_servers() -> None:
    inventory = Inventory(reachable=True, models={"m1": ModelFacts(context_length=10)})
    small = agent_view("small", type="ollama", endpoint="http://x", model="m1")
    small = small.model_copy(update={"inventory": inventory})
    down = agent_view("down", type="ollama", endpoint="http://y", model="m1")
    down = down.model_copy(update={"inventory": Inventory(reachable=False, reason="refused")})
    answer = verdicts(FindAgents(prompt="x" * 400), [small, down])
    assert answer["small"][1] == "the prompt (~100 tokens) exceeds its context of 10"
    assert answer["down"][1] == "unreachable: refused"


def test_the_choice_is_the_schedulers_and_full_agents_say_so() -> None:
    full = agent_view("full", load=1, capabilities=["py"])
    busy = agent_view("busy", load=1, max_concurrent=4, capabilities=["py"])
    idle = agent_view("idle", max_concurrent=4, capabilities=["py"])
    query = FindAgents(capabilities=["py"])
    answer = find_agents(query, [full, busy, idle])
    load = {a.id: a.load for a in (full, busy, idle)}
    chosen = choose(needs_of(query), [full, busy, idle], load)
    assert chosen is not None and answer.chosen == chosen.spec.name == "idle"
    by_name = {a.agent: a for a in answer.agents}
    assert by_name["full"].eligible and not by_name["full"].free
    assert by_name["full"].reason == "full: 1/1 slots busy"
    assert by_name["idle"].chosen and "idle" in answer.decision


def test_answered_on_the_query_subject_and_bad_queries_are_refused() -> None:
    handler = QueryHandler(FleetProjection())
    ok = handler.handle_raw(FindAgents.SUBJECT, b'{"capabilities": ["x"]}')
    assert ok.status == "ok"
    assert Explanation.model_validate(ok.result).decision == "no agents are registered"
    bad = handler.handle_raw(FindAgents.SUBJECT, b'{"capabilities": ["NOT VALID"]}')
    assert bad.status == "error" and bad.code == "invalid" and "capabilities" in bad.reason
