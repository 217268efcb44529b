"""The live projection follows the store: own saves from memory, other writers' from the log."""

from __future__ import annotations

from coordinator.factories import new_agent, new_task
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.relay import FollowerSource
from whoosh_coordinator.store import open_store


def test_own_saves_fold_from_memory_and_other_writers_from_the_log(sqlite_url: str) -> None:
    ours, theirs = open_store(sqlite_url), open_store(sqlite_url)
    follower = Follower(ours, FleetProjection())
    follower.fold_saved(ours.save(new_agent("a")))
    assert follower.projection.position == 1
    theirs.save(new_task())  # another writer: notification 2
    follower.fold_saved(ours.save(new_task()))  # ours is 3: not contiguous, read the log
    assert follower.projection.position == 3
    assert len(follower.projection.tasks) == 2
    assert [e.notification_id for e in follower.recent] == [1, 2, 3]
    ours.close()
    theirs.close()


def test_relay_source_serves_recent_events_from_memory_and_older_from_the_store(
    sqlite_url: str,
) -> None:
    store = open_store(sqlite_url)
    follower = Follower(store, FleetProjection())
    for _ in range(5):
        follower.fold_saved(store.save(new_task()))
    source = FollowerSource(follower)
    assert [e.notification_id for e in source.read_after(3, 10)] == [4, 5]
    assert source.read_after(5, 10) == []
    follower.recent.popleft()  # pretend the oldest fell out of memory
    follower.recent.popleft()
    assert [e.notification_id for e in source.read_after(0, 10)] == [1, 2, 3, 4, 5]
    store.save(new_task())  # not folded yet: the relay must not get ahead of the projection
    assert [e.notification_id for e in source.read_after(0, 10)] == [1, 2, 3, 4, 5]
    store.close()


def test_work_item_comes_from_the_projection_and_skips_moved_on_attempts(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    follower = Follower(store, FleetProjection())
    agent, task = new_agent("w"), new_task()
    task.assign(agent.id, agent.name)
    agent.take_slot(task.id, 1)
    follower.fold_saved(store.save(agent, task))
    assigned = next(e for e in follower.recent if e.type == "TaskAssigned")
    work = FollowerSource(follower).work_item(assigned)
    assert work is not None and work.agent.name == "w" and work.prompt == "do it"
    task.cancel("stop", "me")
    follower.fold_saved(store.save(task))
    assert FollowerSource(follower).work_item(assigned) is None
    store.close()
