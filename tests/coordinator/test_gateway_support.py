"""What the gateway needs from the coordinator: agent removal, API keys, the per-actor
task limit, task event histories from the store, and the new task-list filters. Runs on
SQLite and PostgreSQL (the history is read from each store's own table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coordinator.core import Core
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.replay import rebuild
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import queries as q
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.api_keys import Role, generate_key, hash_token


def ask(core: Core, query: q.Query) -> q.QueryReply:
    return QueryHandler(core.projection, core.store).handle_raw(
        query.SUBJECT, query.model_dump_json().encode()
    )


def test_an_agent_with_work_cannot_be_removed_one_without_can_and_its_name_comes_back(
    core: Core,
) -> None:
    core.register("a1")
    task = core.submit(agent="a1")
    refused = core.send(c.RemoveAgent(name="a1", actor="alice"))
    assert refused.code == "bad_state" and "in flight" in (refused.reason or "")

    core.run_to_end(task)
    assert core.send(c.RemoveAgent(name="a1", actor="alice")).accepted
    assert core.projection.agent_by_name("a1") is None
    assert core.send(c.EnableAgent(name="a1")).code == "not_found"
    assert core.send(c.RemoveAgent(name="a1")).code == "not_found"

    again = c.RegisterAgent(spec=AgentSpec(name="a1", command=["cat"], max_concurrent=3))
    assert core.send(again).accepted
    assert core.projection.agent_by_name("a1").spec.max_concurrent == 3
    assert core.send(again).code == "duplicate"
    rebuilt = rebuild(core.store)
    assert rebuilt.agents == core.projection.agents


def test_an_agent_with_a_queued_pinned_task_cannot_be_removed(core: Core) -> None:
    core.register("a1")
    assert core.send(c.DisableAgent(name="a1")).accepted
    core.submit(agent="a1")
    refused = core.send(c.RemoveAgent(name="a1"))
    assert refused.code == "bad_state" and "pinned" in (refused.reason or "")


def test_api_keys_verify_by_hash_and_stop_verifying_when_revoked_or_expired(core: Core) -> None:
    key = generate_key()
    create = c.CreateApiKey(
        prefix=key.prefix, key_hash=key.key_hash, name="ci", role=Role.OPERATOR, actor="root"
    )
    assert core.send(create).accepted
    assert core.send(create).code == "duplicate"

    ok = ask(core, q.VerifyApiKey(prefix=key.prefix, key_hash=key.key_hash))
    view = q.ApiKeyView.model_validate(ok.result)
    assert (view.role, view.created_by, view.name) == (Role.OPERATOR, "root", "ci")
    wrong = ask(core, q.VerifyApiKey(prefix=key.prefix, key_hash=hash_token("whk_x")))
    assert (wrong.code, wrong.reason) == ("unauthorized", "unknown API key")

    assert core.send(c.RevokeApiKey(prefix=key.prefix, actor="root")).accepted
    assert core.send(c.RevokeApiKey(prefix=key.prefix)).code == "bad_state"
    revoked = ask(core, q.VerifyApiKey(prefix=key.prefix, key_hash=key.key_hash))
    assert revoked.code == "unauthorized" and "revoked" in (revoked.reason or "")
    listed = q.ApiKeyList.model_validate(ask(core, q.ListApiKeys()).result)
    assert [k.revoked_by for k in listed.keys] == ["root"]
    assert "key_hash" not in ask(core, q.ListApiKeys()).model_dump_json()

    soon = generate_key()
    expires = datetime.now(UTC) + timedelta(milliseconds=200)
    assert core.send(
        c.CreateApiKey(
            prefix=soon.prefix, key_hash=soon.key_hash, name="s", role="viewer", expires_at=expires
        )
    ).accepted
    handler = QueryHandler(core.projection, core.store, clock=lambda: expires)
    expired = handler.handle_raw(
        q.VerifyApiKey.SUBJECT,
        q.VerifyApiKey(prefix=soon.prefix, key_hash=soon.key_hash).model_dump_json().encode(),
    )
    assert expired.code == "unauthorized" and "expired" in (expired.reason or "")
    past = c.CreateApiKey(
        prefix=generate_key().prefix,
        key_hash=soon.key_hash,
        name="p",
        role="viewer",
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert core.send(past).code == "invalid"


def test_the_active_task_limit_counts_the_actors_unfinished_tasks_only(core: Core) -> None:
    core.register("a1", max_concurrent=1)
    first = core.submit(actor="k1", max_active_tasks=2)
    core.submit(actor="k1", max_active_tasks=2)  # queued behind the first
    limited = core.send(c.SubmitTask(prompt="x", actor="k1", max_active_tasks=2))
    assert limited.code == "limited" and "2 unfinished" in (limited.reason or "")
    assert core.send(c.SubmitTask(prompt="x", actor="k2", max_active_tasks=2)).accepted
    core.run_to_end(first)
    assert core.send(c.SubmitTask(prompt="x", actor="k1", max_active_tasks=2)).accepted


def test_a_group_commit_cannot_slip_past_the_limit(core: Core) -> None:
    core.register("a1")
    batch = [c.SubmitTask(prompt=f"p{i}", actor="k", max_active_tasks=2) for i in range(4)]
    replies = core.handler.handle_batch(batch)
    assert [r.status for r in replies] == ["accepted", "accepted", "rejected", "rejected"]


def test_a_tasks_history_comes_from_the_store_in_order_and_resumes_after_an_id(
    core: Core,
) -> None:
    core.register("a1")
    other = core.submit(prompt="other")
    task = core.submit(prompt="mine")
    core.run_to_end(other)
    core.run_to_end(task)
    page = q.EventPage.model_validate(ask(core, q.GetEvents(aggregate_id=task)).result)
    types = [e.type for e in page.events]
    assert types == ["TaskSubmitted", "TaskAssigned", "TaskStarted", "TaskCompleted"]
    assert all(e.aggregate_id == task for e in page.events)
    ids = [e.notification_id for e in page.events]
    assert ids == sorted(ids)

    first = q.EventPage.model_validate(ask(core, q.GetEvents(aggregate_id=task, limit=2)).result)
    assert first.next_cursor == ids[1]
    rest = ask(core, q.GetEvents(aggregate_id=task, after=first.next_cursor))
    assert [e.notification_id for e in q.EventPage.model_validate(rest.result).events] == ids[2:]

    log = q.EventPage.model_validate(ask(core, q.GetEvents(after=ids[0], limit=1000)).result)
    assert log.events[0].notification_id == ids[0] + 1 and log.next_cursor is None


def test_task_list_filters_by_capability_and_submission_time(core: Core) -> None:
    core.register("a1", capabilities={"python": 1.0})
    plain = core.submit(prompt="plain")
    py = core.submit(prompt="py", capabilities=["python"])
    submitted = core.task(py).submitted_at

    def listed(**filters) -> list:
        page = q.TaskPage.model_validate(ask(core, q.ListTasks(**filters)).result)
        return [t.id for t in page.tasks]

    assert listed(capability="python") == [py]
    assert listed(submitted_after=submitted) == [py]
    assert listed(submitted_before=submitted) == [plain]
    assert core.task(py).submitted_by == "system"
    bad = QueryHandler(core.projection, core.store).handle_raw(
        q.ListTasks.SUBJECT, b'{"submitted_after": "2026-01-01T00:00:00"}'
    )
    assert bad.code == "invalid" and "timezone" in (bad.reason or "")
