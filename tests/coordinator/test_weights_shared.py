"""Traffic weights' round-robin credits are folded from events (weights.py), so every
coordinator on a store, a restarted one and a replay pick and explain alike."""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from coordinator.core import Core
from coordinator.test_two_writers import handler
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.scheduling.explain import explain
from whoosh_coordinator.scheduling.scheduler import Needs
from whoosh_coordinator.store import read_envelopes
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agent_fit import FindAgents
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.explain import Explanation


def register(h: CommandHandler, name: str, weight: int) -> None:
    spec = AgentSpec(name=name, command=["cat"], max_concurrent=500, weight=weight)
    assert h.handle(c.RegisterAgent(spec=spec)).accepted


def submit_and_place(h: CommandHandler) -> UUID:
    reply = h.handle(c.SubmitTask(prompt="hello"))
    assert reply.accepted, reply.reason
    Assigner(h, timeout_grace_s=0).assign_pending()
    return UUID(reply.ids["task_id"])


def next_pick(h: CommandHandler) -> str | None:
    return explain(Needs(), h.projection.agents.values(), rotation=h.projection.rotation).chosen


def test_the_weights_turn_is_recorded_on_the_assignment(core: Core) -> None:
    core.register("stable", max_concurrent=4, weight=75)
    core.register("canary", max_concurrent=4, weight=25)
    core.submit()
    assigned = [e.payload() for e in read_envelopes(core.store, 0) if e.type == "TaskAssigned"]
    ids = {name: str(core.projection.agent_by_name(name).id) for name in ("stable", "canary")}
    assert assigned[0].weighted_among == {ids["stable"]: 75, ids["canary"]: 25}


def test_two_coordinators_split_by_weight_and_agree_on_the_credits(store_url: str) -> None:
    a, b = handler(store_url), handler(store_url)
    try:
        register(a, "stable", 80)
        register(a, "canary", 20)
        for i in range(100):  # alternate writers, each caught up with the other first
            h = (a, b)[i % 2]
            Follower(h.store, h.projection).catch_up()
            submit_and_place(h)
        for h in (a, b):
            Follower(h.store, h.projection).catch_up()
        placed = Counter(t.agent for t in a.projection.tasks.values())
        assert placed == {"stable": 80, "canary": 20}
        replayed = rebuild(a.store)
        assert a.projection.rotation.credits == b.projection.rotation.credits
        assert replayed.rotation.credits == a.projection.rotation.credits
        assert next_pick(a) == next_pick(b) is not None  # explain agrees on both
    finally:
        a.store.close()
        b.store.close()


def test_coordinators_deciding_from_the_same_credits_even_out(store_url: str) -> None:
    """Both place one task from the same credits before seeing each other's: the turn is
    taken twice, and the fold makes the next picks make up for it."""
    a, b = handler(store_url), handler(store_url)
    try:
        register(a, "stable", 75)
        register(a, "canary", 25)
        for _ in range(100):
            for h in (a, b):
                Follower(h.store, h.projection).catch_up()
            submit_and_place(a)
            submit_and_place(b)  # b has not folded a's placement
        Follower(a.store, a.projection).catch_up()
        placed = Counter(t.agent for t in a.projection.tasks.values())
        assert abs(placed["stable"] - 150) <= 10, placed  # 75 % of 200, within 5 points
    finally:
        a.store.close()
        b.store.close()


def test_find_agents_names_the_next_weighted_pick(core: Core) -> None:
    """FindAgents (and ExplainTask) read the folded credits: what they name as chosen is
    where the next task goes, turn after turn."""
    core.register("stable", max_concurrent=50, weight=75)
    core.register("canary", max_concurrent=50, weight=25)
    queries = QueryHandler(core.projection)
    for _ in range(8):
        reply = queries.handle_raw(FindAgents.SUBJECT, b"{}")
        named = Explanation.model_validate(reply.result).chosen
        assert core.task(core.submit()).agent == named
