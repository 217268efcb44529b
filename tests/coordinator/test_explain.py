"""The scheduler's decisions in words: `explain` says what `choose` does, and why not others."""

from __future__ import annotations

from uuid import UUID

from coordinator.core import Core
from coordinator.factories import agent_view
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.scheduling.explain import explain
from whoosh_coordinator.scheduling.scheduler import Needs, choose, why_not
from whoosh_coordinator.scheduling.weights import WeightedRotation
from whoosh_shared.contract.explain import ExplainTask, TaskExplanation
from whoosh_shared.contract.inventory import Inventory, ModelFacts, SpeedStats, model_key
from whoosh_shared.contract.queries import AgentView


def llm(name: str, decode_tps: float | None = None, **spec) -> AgentView:
    view = agent_view(name, type="ollama", endpoint="http://x", model="m", **spec)
    view.inventory = Inventory(
        reachable=True, models={"m": ModelFacts(context_length=4096)}, loaded=["m"]
    )
    if decode_tps is not None:
        view.speeds[model_key("m")] = SpeedStats(
            decode_tps=decode_tps, prefill_tps=1000.0, samples=3
        )
    return view


def verdicts(found) -> dict[str, str | None]:
    return {a.agent: a.reason for a in found.agents}


def test_every_excluded_agent_is_named_with_the_rule_that_excludes_it() -> None:
    agents = [
        agent_view("off", enabled=False),
        agent_view("ill"),
        agent_view("drained", weight=0),
        agent_view("no-python"),
        agent_view("busy", capabilities=["python"], load=1),
        agent_view("ready", capabilities=["python"]),
    ]
    agents[1].healthy, agents[1].health_reason = False, "no heartbeat for 40 s"
    found = explain(Needs(capabilities=("python",)), agents)
    assert verdicts(found) == {
        "off": "disabled",
        "ill": "unhealthy: no heartbeat for 40 s",
        "drained": "draining (weight 0): no new work",
        "no-python": "it lacks capability 'python'",
        "busy": "full: 1/1 slots busy",
        "ready": None,
    }
    assert found.chosen == "ready"
    assert found.decision == "ready: the only eligible agent with a free slot"
    assert [a.agent for a in found.agents if a.eligible] == ["busy", "ready"]


def test_the_estimate_that_decided_is_shown() -> None:
    fast, slow = llm("fast", decode_tps=100.0), llm("slow", decode_tps=25.0)
    needs = Needs(model="m", output_tokens=100)
    found = explain(needs, [slow, fast])
    assert found.chosen == "fast" == choose(needs, [slow, fast], {fast.id: 0, slow.id: 0}).spec.name
    assert found.decision == "fast: estimated completion time (1 s against 4 s on slow)"
    estimates = {a.agent: a.estimate_s for a in found.agents}
    assert estimates["fast"] < estimates["slow"]


def test_a_waiting_task_says_why() -> None:
    needs = Needs(model="other")
    found = explain(needs, [llm("a")])
    assert found.chosen is None and found.decision.startswith("waits: no agent can run it")
    assert verdicts(found) == {"a": "its server does not have model 'other'"}
    busy = explain(Needs(), [agent_view("x", load=1)])
    assert busy.decision == "waits for a free slot on an eligible agent (x)"
    assert explain(Needs(), []).decision == "no agents are registered"
    pinned = explain(Needs(agent="y"), [agent_view("x")])
    assert verdicts(pinned) == {"x": "the task is pinned to agent 'y'"}
    long = explain(Needs(model="m", prompt_tokens=5000), [llm("a")])
    assert verdicts(long) == {"a": "the prompt (~5000 tokens) exceeds its context of 4096"}


def test_weights_are_named_and_explaining_does_not_take_a_turn() -> None:
    a, b = agent_view("a", weight=75), agent_view("b", weight=25)
    rotation = WeightedRotation()
    load = {a.id: 0, b.id: 0}
    for _ in range(5):
        found = explain(Needs(), [a, b], load, rotation)
        assert found.chosen == choose(Needs(), [a, b], load, rotation=rotation).spec.name
    assert "traffic weights decide among free agents (a 75, b 25)" in found.decision


def test_why_not_and_eligible_agree_with_the_plan() -> None:
    agent = agent_view("a", capabilities=["x"])
    assert why_not(Needs(capabilities=("x",)), agent) is None
    assert why_not(Needs(agent_type="ollama"), agent) == "it is a cli agent; the task needs ollama"


def test_the_query_on_a_real_store(core: Core) -> None:
    core.register("one", capabilities=["go"])
    core.register("two")
    task = core.submit(capabilities=["go"])
    reply = QueryHandler(core.projection).handle_raw(
        ExplainTask.SUBJECT, ExplainTask(task_id=task).model_dump_json().encode()
    )
    found = TaskExplanation.model_validate(reply.result)
    assert (found.status, found.agent) == ("assigned", "one")
    assert (
        found.decision
        == "is on one; submitted now: waits for a free slot on an eligible agent (one)"
    )
    assert verdicts(found)["two"] == "it lacks capability 'go'"
    unknown = QueryHandler(core.projection).handle_raw(
        ExplainTask.SUBJECT, ExplainTask(task_id=UUID(int=7)).model_dump_json().encode()
    )
    assert (unknown.status, unknown.code) == ("error", "not_found")
