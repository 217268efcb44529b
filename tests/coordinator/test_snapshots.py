"""Snapshots are taken from the aggregate just saved, and load back to the same state.

An Agent gains two events per task (slot taken, slot released); its snapshot every 200
events bounds the cost of loading it. The snapshot is taken from memory at save time
(the library's own way reloaded the aggregate from the store inside the save).
"""

from __future__ import annotations

import uuid

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.store import WhooshStore, open_store
from whoosh_coordinator.tasks.domain import Task


def agent_with_slot_events(store: WhooshStore, tasks: int) -> Agent:
    agent = Agent(
        spec={"name": "snap", "type": "cli", "command": ["true"], "max_concurrent": 4},
        actor="test",
    )
    store.save(agent)
    for _ in range(tasks):
        task_id = uuid.uuid4()
        agent.take_slot(task_id, 1)
        store.save(agent)
        agent.release_slot(task_id)
        store.save(agent)
    return agent


def latest_snapshot_version(store: WhooshStore, aggregate: Agent | Task) -> int | None:
    assert store.snapshots is not None
    snapshots = list(store.snapshots.get(aggregate.id, desc=True, limit=1))
    return snapshots[0].originator_version if snapshots else None


def test_an_agent_is_snapshotted_at_its_interval_and_loads_back_equal(store_url: str) -> None:
    store = open_store(store_url)
    interval = WhooshStore.snapshotting_intervals[Agent]
    agent = agent_with_slot_events(store, tasks=interval)  # 1 + 2 x interval events
    assert agent.version == 1 + 2 * interval
    assert latest_snapshot_version(store, agent) == 2 * interval
    loaded = store.repository.get(agent.id)
    assert loaded.version == agent.version
    assert vars(loaded) == vars(agent)


def test_a_snapshot_in_a_multi_event_save_records_the_saved_state(store_url: str) -> None:
    """Two events in one save, the first at the interval: the snapshot is of the state
    after both (a later version than the interval's), and loading it is still exact."""
    store = open_store(store_url)
    interval = WhooshStore.snapshotting_intervals[Agent]
    agent = agent_with_slot_events(store, tasks=(interval - 2) // 2)
    assert agent.version == interval - 1
    first, second = uuid.uuid4(), uuid.uuid4()
    agent.take_slot(first, 1)  # version == interval
    agent.take_slot(second, 1)
    store.save(agent)
    assert latest_snapshot_version(store, agent) == interval + 1
    loaded = store.repository.get(agent.id)
    assert loaded.holds(first) and loaded.holds(second)
    assert vars(loaded) == vars(agent)


def test_no_snapshot_before_the_interval(store_url: str) -> None:
    store = open_store(store_url)
    interval = WhooshStore.snapshotting_intervals[Agent]
    agent = agent_with_slot_events(store, tasks=interval // 2 - 1)
    assert agent.version < interval
    assert latest_snapshot_version(store, agent) is None


def test_a_task_with_many_milestones_loads_back_equal(store_url: str) -> None:
    store = open_store(store_url)
    task = Task(
        prompt="long run",
        priority=0,
        capabilities=[],
        agent_type="cli",
        model=None,
        agent="snap",
        timeout_s=60.0,
        retry={},
        actor="test",
    )
    agent = Agent(
        spec={"name": "snap", "type": "cli", "command": ["true"], "max_concurrent": 4},
        actor="test",
    )
    task.assign(agent.id, "snap")
    task.start(1, "executor-1")
    store.save(task, agent)
    interval = WhooshStore.snapshotting_intervals[Task]
    while task.version <= interval + 5:
        task.progress(1, f"running {task.version}s")
        store.save(task)
    assert latest_snapshot_version(store, task) == interval
    loaded = store.repository.get(task.id)
    assert loaded.version == task.version and loaded.status == "running"
    assert vars(loaded) == vars(task)
