"""Idempotent submit on real stores (SQLite file and PostgreSQL): the same key from the
same actor gives the same task -- after a restart, on another coordinator, inside one
group commit, and past the actor's task limit -- and never a second task."""

from __future__ import annotations

import pytest
from coordinator.core import Core
from coordinator.test_two_writers import accepted, handler
from whoosh_coordinator.follower import Follower
from whoosh_shared.contract import commands as c


@pytest.fixture(autouse=True)
def _agent(core: Core) -> None:
    core.register("worker")


def submit(key: str | None, actor: str = "key aaa (ci)", **fields) -> c.SubmitTask:
    return c.SubmitTask(prompt=fields.pop("prompt", "hello"), actor=actor,
                        idempotency_key=key, **fields)  # fmt: skip


def tasks_in_store(core: Core) -> int:
    Follower(core.store, core.projection).catch_up()
    return len(core.projection.tasks)


def test_the_same_key_returns_the_same_task_and_stores_nothing_more(core: Core) -> None:
    first = accepted(core.send(submit("k-1")))
    events = core.events()
    again = accepted(core.send(submit("k-1")))
    assert again.ids["task_id"] == first.ids["task_id"]
    assert again.ids.get("replayed") == "true" and "replayed" not in first.ids
    assert core.events() == events


def test_keys_are_per_actor_and_tasks_without_a_key_are_never_merged(core: Core) -> None:
    mine = accepted(core.send(submit("shared", actor="key aaa (a)")))
    theirs = accepted(core.send(submit("shared", actor="key bbb (b)")))
    assert mine.ids["task_id"] != theirs.ids["task_id"]
    plain = [accepted(core.send(submit(None))).ids["task_id"] for _ in range(2)]
    assert plain[0] != plain[1]
    assert tasks_in_store(core) == 4


def test_a_key_reused_for_another_request_is_refused_naming_it(core: Core) -> None:
    first = accepted(core.send(submit("k-2", prompt="one")))
    reply = core.send(submit("k-2", prompt="two"))
    assert reply.code == "idempotency_key_reused"
    assert "'k-2'" in reply.reason and first.ids["task_id"] in reply.reason
    assert tasks_in_store(core) == 1


def test_a_retry_is_answered_even_past_the_task_limit(core: Core) -> None:
    first = accepted(core.send(submit("k-3", max_active_tasks=1)))
    assert core.send(submit("k-4", max_active_tasks=1)).code == "limited"
    again = accepted(core.send(submit("k-3", max_active_tasks=1)))
    assert again.ids["task_id"] == first.ids["task_id"]


def test_a_restarted_coordinator_and_a_second_one_find_the_task(core: Core) -> None:
    first = accepted(core.send(submit("k-5")))
    restarted, other = handler(core.url), handler(core.url)
    try:
        for coordinator in (restarted, other):
            again = accepted(coordinator.handle(submit("k-5")))
            assert again.ids["task_id"] == first.ids["task_id"]
    finally:
        restarted.store.close()
        other.store.close()
    assert tasks_in_store(core) == 1


def test_two_coordinators_racing_with_one_key_create_one_task(core: Core) -> None:
    a, b = handler(core.url), handler(core.url)
    for coordinator in (a, b):
        Follower(coordinator.store, coordinator.projection).catch_up()
    answers: list[c.CommandReply] = []
    b_save = b.store.save

    def a_saves_first(*aggregates):  # a decides and saves between b's look and b's save
        if not answers:
            answers.append(accepted(a.handle(submit("race"))))
        return b_save(*aggregates)

    b.store.save = a_saves_first  # type: ignore[method-assign]
    try:
        second = accepted(b.handle(submit("race")))
        assert second.ids["task_id"] == answers[0].ids["task_id"]
        assert second.ids.get("replayed") == "true"
        assert tasks_in_store(core) == 1
    finally:
        a.store.close()
        b.store.close()


def test_one_key_twice_in_one_group_commit_makes_one_task(core: Core) -> None:
    replies = core.handler.handle_batch([submit("batch"), submit("batch"), submit(None)])
    assert all(r.accepted for r in replies), replies
    assert replies[0].ids["task_id"] == replies[1].ids["task_id"]
    assert replies[1].ids.get("replayed") == "true"
    assert tasks_in_store(core) == 2


def test_a_malformed_key_is_rejected_naming_the_field(core: Core) -> None:
    reply = core.handler.handle_raw(
        c.SubmitTask.SUBJECT, b'{"prompt": "x", "idempotency_key": "has space"}'
    )
    assert reply.code == "invalid" and "idempotency_key" in reply.reason
