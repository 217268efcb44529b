"""The scheduler's rules, as a pure function of views."""

from __future__ import annotations

import random

from coordinator.factories import NOW, agent_view, task_view
from whoosh_coordinator.scheduling.scheduler import Needs, choose, plan
from whoosh_shared.contract.inventory import Inventory, ModelFacts
from whoosh_shared.contract.queries import AgentView, TaskView


def names(placements) -> list[str]:
    return [p.agent_name for p in placements]


def test_priority_first_then_submission_order() -> None:
    agent = agent_view("solo", max_concurrent=2)
    low_early = task_view(1, priority=2)
    high_late = task_view(3, priority=9)
    mid = task_view(2, priority=5)
    placed = plan([high_late, mid, low_early], [agent], NOW)
    assert [p.task_id for p in placed] == [high_late.id, mid.id]


def test_never_exceeds_max_concurrent_counting_current_load() -> None:
    agent = agent_view("a", load=1, max_concurrent=3)
    tasks = [task_view(i) for i in range(5)]
    assert len(plan(tasks, [agent], NOW)) == 2


def test_matches_type_model_capabilities_and_pin() -> None:
    cli = agent_view("cli1", capabilities=["python"])
    llm = agent_view("llm1", type="ollama", endpoint="http://x", model="m1", capabilities=["chat"])
    assert names(plan([task_view(1, capabilities=["python"])], [cli, llm], NOW)) == ["cli1"]
    assert names(plan([task_view(1, model="m1")], [cli, llm], NOW)) == ["llm1"]
    assert names(plan([task_view(1, agent_type="ollama")], [cli, llm], NOW)) == ["llm1"]
    assert names(plan([task_view(1, pinned_agent="cli1")], [cli, llm], NOW)) == ["cli1"]
    assert plan([task_view(1, capabilities=["python", "chat"])], [cli, llm], NOW) == []


def test_blocked_task_does_not_block_the_ones_behind_it() -> None:
    agent = agent_view("a", capabilities=["x"])
    blocked = task_view(1, priority=9, capabilities=["y"])
    runnable = task_view(2, priority=1, capabilities=["x"])
    assert [p.task_id for p in plan([blocked, runnable], [agent], NOW)] == [runnable.id]


def test_disabled_agents_get_nothing() -> None:
    assert plan([task_view(1)], [agent_view("off", enabled=False)], NOW) == []


def test_least_loaded_agent_wins_then_proficiency() -> None:
    busy = agent_view("busy", load=1, max_concurrent=2)
    idle = agent_view("idle", max_concurrent=2)
    assert names(plan([task_view(1)], [busy, idle], NOW)) == ["idle"]
    weak = agent_view("weak", capabilities={"go": 0.2})
    strong = agent_view("strong", capabilities={"go": 0.9})
    assert names(plan([task_view(1, capabilities=["go"])], [weak, strong], NOW)) == ["strong"]


def test_retry_prefers_an_agent_not_yet_tried_but_falls_back() -> None:
    first, second = agent_view("first"), agent_view("second")
    retry = task_view(1, tried_agents=["first"])
    assert names(plan([retry], [first, second], NOW)) == ["second"]
    assert names(plan([retry], [first], NOW)) == ["first"]


def test_retry_waits_for_a_busy_untried_agent_instead_of_the_one_that_failed() -> None:
    failed_it, busy = agent_view("failed-it"), agent_view("busy", load=1)
    assert plan([task_view(1, tried_agents=["failed-it"])], [failed_it, busy], NOW) == []


def test_backoff_holds_a_retry_until_not_before() -> None:
    from datetime import timedelta

    waiting = task_view(1, not_before=NOW + timedelta(seconds=5))
    assert plan([waiting], [agent_view("a")], NOW) == []
    assert len(plan([waiting], [agent_view("a")], NOW + timedelta(seconds=6))) == 1


def test_a_long_queue_stops_at_the_last_free_slot() -> None:
    agent = agent_view("a", load=1, max_concurrent=3)
    queued = [task_view(i) for i in range(10_000)]
    placed = plan(queued, [agent], NOW)
    assert [p.task_id for p in placed] == [queued[0].id, queued[1].id]


def test_tasks_stuck_on_a_busy_model_do_not_hide_a_shorter_prompt_behind_them() -> None:
    inventory = {"m:1": ModelFacts(context_length=100_000)}
    big = agent_view("big", load=1, type="ollama", endpoint="http://h:1", model="m:1")
    big.inventory = Inventory(reachable=True, models=inventory)
    small = agent_view("small", type="ollama", endpoint="http://h:2", model="m:1")
    small.inventory = Inventory(reachable=True, models={"m:1": ModelFacts(context_length=1000)})
    long_prompt = "x" * 40_000  # ~10k tokens: only "big" can read it, and it is full
    queued = [task_view(i, model="m:1", prompt=long_prompt) for i in range(3)]
    queued.append(task_view(3, model="m:1", prompt="short"))
    assert [(p.task_id, p.agent_name) for p in plan(queued, [big, small], NOW)] == [
        (queued[3].id, "small")
    ]


def _naive_plan(queued: list[TaskView], agents: list[AgentView], rng: random.Random) -> list:
    """The scheduler's loop without its memory of stuck needs: the reference."""
    agents = [a for a in agents if a.in_rotation]
    load = {a.id: a.load for a in agents}
    placements = []
    for task in queued:
        chosen = choose(Needs.of(task), agents, load, rng)
        if chosen is not None:
            load[chosen.id] += 1
            placements.append((task.id, chosen.spec.name))
    return placements


def test_remembering_stuck_needs_places_exactly_what_trying_every_task_places() -> None:
    models, capabilities = ["m:1", "m:2", "m:3"], ["chat", "code"]
    for seed in range(300):
        pick = random.Random(seed)
        agents = []
        for i in range(pick.randint(1, 5)):
            max_concurrent = pick.randint(1, 3)
            model = pick.choice(models)
            agent = agent_view(
                f"a{i}",
                load=pick.randint(0, max_concurrent),
                type="ollama",
                endpoint=f"http://h:{i + 1}",
                model=model,
                max_concurrent=max_concurrent,
                capabilities={c: pick.random() for c in capabilities if pick.random() < 0.6},
            )
            facts = ModelFacts(context_length=pick.choice([None, 50, 500, 5000]))
            agent.inventory = Inventory(reachable=True, models={model: facts})
            agents.append(agent)
        names = [a.spec.name for a in agents]
        queued = [
            task_view(
                n,
                model=pick.choice([*models, None]),
                prompt="x" * pick.randint(1, 8000),
                capabilities=[c for c in capabilities if pick.random() < 0.3],
                tried_agents=[a for a in names if pick.random() < 0.2],
            )
            for n in range(pick.randint(1, 40))
        ]
        expected = _naive_plan(queued, agents, random.Random(seed))
        placed = plan(queued, agents, NOW, random.Random(seed))
        assert [(p.task_id, p.agent_name) for p in placed] == expected, f"seed {seed}"
