"""Traffic weights: the split among free agents, draining with 0, the events and refusals."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import pytest
from coordinator.core import Core
from coordinator.factories import NOW, agent_view, task_view
from whoosh_coordinator.scheduling.scheduler import Needs, choose, plan
from whoosh_coordinator.scheduling.weights import WeightedRotation
from whoosh_coordinator.store import read_envelopes
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentUpdate
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.events import AgentWeightChanged
from whoosh_shared.contract.queries import AgentView


def split(agents: list[AgentView], tasks: int) -> Counter[str]:
    """Where `tasks` single tasks go, one at a time, each agent always having a free slot
    (as when tasks finish as fast as they arrive)."""
    rotation = WeightedRotation()
    load = {a.id: 0 for a in agents}
    counts: Counter[str] = Counter()
    for _ in range(tasks):
        chosen = choose(Needs(), agents, load, rotation=rotation)
        assert chosen is not None
        counts[chosen.spec.name] += 1
    return counts


@pytest.mark.parametrize(
    "weights",
    [{"stable": 90, "canary": 10}, {"a": 50, "b": 30, "c": 20}, {"a": 100, "b": 1}],
)
def test_new_work_is_split_in_proportion_to_the_weights(weights: dict[str, int]) -> None:
    agents = [agent_view(name, weight=w) for name, w in weights.items()]
    counts = split(agents, 1000)
    total = sum(weights.values())
    for name, weight in weights.items():
        share = counts[name] / 1000
        assert abs(share - weight / total) <= 0.05, (name, counts)  # the issue's +-5 points
        assert abs(counts[name] - 1000 * weight / total) <= 1  # smooth WRR: within one pick


def test_the_split_is_spread_out_not_in_bursts() -> None:
    agents = [agent_view("a", weight=75), agent_view("b", weight=25)]
    rotation = WeightedRotation()
    load = {a.id: 0 for a in agents}
    order = [choose(Needs(), agents, load, rotation=rotation).spec.name for _ in range(8)]
    assert order.count("b") == 2 and "b b" not in " ".join(order)


def test_equal_weights_leave_the_choice_to_the_estimates() -> None:
    busy = agent_view("busy", load=1, max_concurrent=2, weight=40)
    idle = agent_view("idle", max_concurrent=2, weight=40)
    assert [p.agent_name for p in plan([task_view(1)], [busy, idle], NOW)] == ["idle"]


def test_weight_zero_drains_and_never_leaves_work_queued_while_another_is_free() -> None:
    drained = agent_view("old", weight=0, max_concurrent=4)
    small = agent_view("new", weight=1, max_concurrent=4)
    placed = plan([task_view(i) for i in range(10)], [drained, small], NOW)
    assert [p.agent_name for p in placed] == ["new"] * 4  # weight 1 still takes all it can
    assert plan([task_view(1)], [drained], NOW) == []


def test_a_full_heavy_agent_does_not_hold_work_back_from_a_light_free_one() -> None:
    heavy = agent_view("heavy", weight=100, load=2, max_concurrent=2)
    light = agent_view("light", weight=5, max_concurrent=3)
    assert [p.agent_name for p in plan([task_view(i) for i in range(5)], [heavy, light], NOW)] == [
        "light"
    ] * 3


def test_weights_are_validated_at_the_boundary() -> None:
    with pytest.raises(ValueError, match="weight"):
        c.SetAgentWeight(name="a", weight=101)
    with pytest.raises(ValueError, match="weight"):
        AgentUpdate(weight=-1)


# -- on a real store --------------------------------------------------------------------


def test_weight_changes_are_events_with_their_actor(core: Core) -> None:
    core.register("gpu1")
    assert core.send(c.SetAgentWeight(name="gpu1", weight=10, actor="key ab12 (ops)")).accepted
    assert core.send(c.SetAgentWeight(name="gpu1", weight=10, actor="again")).accepted
    update = c.UpdateAgent(name="gpu1", changes=AgentUpdate(weight=0), actor="whoosh up")
    assert core.send(update).accepted
    recorded = [
        e.payload() for e in read_envelopes(core.store, 0) if e.type == "AgentWeightChanged"
    ]
    assert recorded == [
        AgentWeightChanged(weight=10, previous=100, actor="key ab12 (ops)"),
        AgentWeightChanged(weight=0, previous=10, actor="whoosh up"),
    ]  # the same weight again recorded nothing
    assert core.projection.agent_by_name("gpu1").spec.weight == 0


def test_unknown_agent_is_refused(core: Core) -> None:
    reply = core.send(c.SetAgentWeight(name="ghost", weight=50))
    assert (reply.code, reply.reason) == ("not_found", "unknown agent 'ghost'")


def test_draining_lets_running_work_finish_and_takes_no_new_work(core: Core) -> None:
    core.register("old", max_concurrent=2)
    core.register("new", max_concurrent=2)
    running = core.submit()
    held_by = core.task(running).agent
    assert core.send(c.SetAgentWeight(name=held_by, weight=0)).accepted
    later = [core.submit() for _ in range(2)]
    assert {core.task(t).agent for t in later} == {"new" if held_by == "old" else "old"}
    assert core.run_to_end(running).accepted
    assert core.task(running).status is TaskStatus.COMPLETED
    assert core.projection.agent_by_name(held_by).healthy  # drained, not ill
    third = core.submit()
    assert core.task(third).status is TaskStatus.QUEUED  # the other is full; drained takes none
    assert core.send(c.SetAgentWeight(name=held_by, weight=100)).accepted
    assert core.task(third).agent == held_by


def test_split_through_the_coordinator(core: Core) -> None:
    core.register("stable", max_concurrent=4, weight=80)
    core.register("canary", max_concurrent=4, weight=20)
    counts: Counter[str] = Counter()
    for _ in range(100):
        task = core.submit()
        counts[core.task(task).agent] += 1
        core.run_to_end(task)
    assert counts == {"stable": 80, "canary": 20}


def test_random_ids_do_not_matter_to_the_rotation() -> None:
    rotation = WeightedRotation()
    a, b = uuid4(), uuid4()
    picks = Counter(rotation.pick([(a, 3), (b, 1)]) for _ in range(400))
    assert picks == {a: 300, b: 100}
