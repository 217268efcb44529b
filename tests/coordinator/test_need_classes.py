"""Need classes: a scheduling pass skips, without reading them, the queued tasks no free
agent could take, and still places exactly what it placed before, fairly and in order."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from coordinator.core import Core
from coordinator.factories import NOW, agent_view, task_view
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.need_classes import fitting, need_class, usable_slots
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.scheduling.fair_queue import FairShare
from whoosh_coordinator.scheduling.scheduler import Needs, plan
from whoosh_coordinator.scheduling.weights import WeightedRotation
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.inventory import Inventory, ModelFacts
from whoosh_shared.contract.queries import AgentView, TaskView

ALICE, BOB = "key a11ce (alice)", "key b0b00 (bob)"


@pytest.fixture
def core(sqlite_url: str) -> Iterator[Core]:
    store = open_store(sqlite_url)
    projection = FleetProjection()
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    yield Core(sqlite_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()


def submit_many(core: Core, count: int, **fields: Any) -> None:
    for start in range(0, count, 500):
        batch = [c.SubmitTask(prompt="bulk", **fields) for _ in range(min(500, count - start))]
        assert all(reply.accepted for reply in core.handler.handle_batch(batch))


def spy_on_order(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many queued tasks each pass handed to the fair order (that is, read)."""
    seen: list[int] = []
    original = FairShare.order

    def order(self: FairShare, queued: Any, *args: Any) -> Any:
        seen.append(len(queued))
        return original(self, queued, *args)

    monkeypatch.setattr(FairShare, "order", order)
    return seen


def busy_gpu_box(core: Core) -> UUID:
    """A fleet where the only gpu agent is full and a plain one has two free slots; the
    task holding the gpu slot."""
    core.register("gpu-box", max_concurrent=1, capabilities={"gpu": 1.0})
    core.register("plain", max_concurrent=2)
    holder = core.submit(capabilities=["gpu"], actor=ALICE)
    assert core.task(holder).agent == "gpu-box"
    return holder


def test_a_pass_reads_none_of_a_queue_no_free_agent_can_take(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_gpu_box(core)
    submit_many(core, 2_000, capabilities=["gpu"], actor=ALICE)
    seen = spy_on_order(monkeypatch)
    assert core.assigner.assign_pending() == 0
    assert seen == []  # not one queued task was looked at
    assert core.projection.count(TaskStatus.QUEUED) == 2_000


def test_a_task_that_can_fit_is_still_picked_behind_thousands_that_cannot(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = busy_gpu_box(core)
    submit_many(core, 2_000, capabilities=["gpu"], actor=ALICE)
    seen = spy_on_order(monkeypatch)
    late = core.submit(prompt="any agent will do", actor=BOB)
    assert core.task(late).status is TaskStatus.ASSIGNED
    assert core.task(late).agent == "plain"
    assert max(seen, default=0) <= 1  # the 2,000 unplaceable tasks were skipped unread
    oldest = min(core.projection.queued(), key=lambda t: t.sequence)
    assert core.run_to_end(holder).accepted  # the gpu slot frees: the oldest gpu task gets it
    assert core.task(oldest.id).status is TaskStatus.ASSIGNED
    assert core.task(oldest.id).agent == "gpu-box"
    assert core.projection.count(TaskStatus.QUEUED) == 2_000 - 1


def test_the_index_follows_tasks_out_of_the_queue_and_back(core: Core) -> None:
    core.register("gpu-box", max_concurrent=1, capabilities={"gpu": 1.0})
    core.register("plain", max_concurrent=1)
    retry = c.RetryPolicy(max_attempts=2)
    first = core.submit(capabilities=["gpu"], retry=retry, actor=ALICE)
    second = core.submit(capabilities=["gpu"], actor=ALICE)
    core.submit(agent="plain", actor=BOB)  # takes plain's slot
    other = core.submit(agent="plain", actor=BOB)
    assert core.task(first).status is TaskStatus.ASSIGNED
    gpu = need_class(core.task(second))
    assert [t.id for t in core.projection.queued([gpu])] == [second]
    assert (core.projection.queued_by(ALICE), core.projection.queued_by(BOB)) == (1, 1)

    assert core.run_to_end(first, ok=False).accepted  # requeued, keeping its place ahead
    assert core.task(first).attempt == 2
    assert core.task(first).status is TaskStatus.ASSIGNED  # and given the freed slot again
    assert [t.id for t in core.projection.queued([gpu])] == [second]
    assert [t.id for t in core.projection.queued()] == [second, other]
    every_class = core.projection.queued_classes()
    assert [t.id for t in core.projection.queued(every_class)] == [second, other]

    assert core.send(c.CancelTask(task_id=second, reason="no longer wanted")).accepted
    assert core.send(c.CancelTask(task_id=other, reason="no longer wanted")).accepted
    assert core.projection.queued_classes() == []
    assert (core.projection.queued_by(ALICE), core.projection.queued_by(BOB)) == (0, 0)


def test_turns_between_keys_ignore_tasks_that_cannot_be_placed() -> None:
    """Alice's unplaceable backlog takes no turns from her placeable tasks: among what can
    run, alice and bob still alternate, each in submission order."""
    blocked = [task_view(i, submitted_by=ALICE, capabilities=["gpu"]) for i in range(1, 101)]
    alice = [task_view(100 + i, submitted_by=ALICE) for i in range(1, 4)]
    bob = [task_view(200 + i, submitted_by=BOB) for i in range(1, 4)]
    everything = sorted(blocked + alice + bob, key=lambda t: t.sequence)
    free = [agent_view("plain", max_concurrent=10)]
    classes = set(fitting({need_class(t) for t in everything}, free))
    runnable = [t for t in everything if need_class(t) in classes]
    queued_by = {ALICE: 103, BOB: 3}.__getitem__
    unfinished = {ALICE: 103, BOB: 3}.__getitem__
    order = list(FairShare().order(runnable, unfinished, queued_by))
    assert [t.submitted_by for t in order] == [ALICE, BOB] * 3
    assert [t.sequence for t in order if t.submitted_by == ALICE] == [101, 102, 103]


def random_fleet(pick: random.Random) -> list[AgentView]:
    models, agents = ["m:1", "m:2", "m:3"], []
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
            capabilities={c: 1.0 for c in ("chat", "code") if pick.random() < 0.5},
            enabled=pick.random() < 0.9,
        )
        facts = ModelFacts(context_length=pick.choice([None, 50, 500, 5000]))
        agent.inventory = Inventory(reachable=True, models={model: facts})
        agents.append(agent)
    return agents


def random_queue(pick: random.Random, names: list[str]) -> list[TaskView]:
    queued = [
        task_view(
            n,
            priority=pick.choice([5, 5, 9]),
            model=pick.choice(["m:1", "m:2", "m:3", None]),
            prompt="x" * pick.randint(1, 8000),
            capabilities=[c for c in ("chat", "code", "gpu") if pick.random() < 0.3],
            tried_agents=[a for a in names if pick.random() < 0.2],
            pinned_agent=pick.choice([None, None, None, *names]),
        )
        for n in range(pick.randint(1, 60))
    ]
    return sorted(queued, key=lambda t: (-t.priority, t.sequence))


@pytest.mark.parametrize("block", range(6))
def test_skipping_classes_places_exactly_what_reading_the_whole_queue_places(block: int) -> None:
    for seed in range(block * 50, block * 50 + 50):
        pick = random.Random(seed)
        agents = random_fleet(pick)
        queued = random_queue(pick, [a.spec.name for a in agents])
        classes = set(fitting({need_class(t) for t in queued}, agents))
        kept = [t for t in queued if need_class(t) in classes]
        everything = plan(queued, agents, NOW, random.Random(seed), WeightedRotation())
        slots = usable_slots(classes, agents)
        skipping = plan(kept, agents, NOW, random.Random(seed), WeightedRotation(), slots=slots)
        assert skipping == everything, f"seed {seed}"


def test_a_spare_slot_no_queued_task_may_use_does_not_make_a_pass_read_the_queue(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One submitter, its tasks pinned to a busy agent, another agent idle: when the busy
    slot frees, the pass places the head of the queue and reads no further."""
    holder = busy_gpu_box(core)
    submit_many(core, 2_000, capabilities=["gpu"], actor=ALICE)
    head = min(core.projection.queued(), key=lambda t: t.sequence)
    read: list[int] = []
    original = Needs.of

    def counted(task: TaskView) -> Needs:
        read.append(task.sequence)
        return original(task)

    monkeypatch.setattr(Needs, "of", staticmethod(counted))
    assert core.run_to_end(holder).accepted
    assert core.task(head.id).status is TaskStatus.ASSIGNED
    assert read == [head.sequence]
