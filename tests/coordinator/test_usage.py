"""Usage per key, agent and model: each task counted once at its end, tokens and cost
summed from what the attempts reported, a cancelled task's kept usage added later, and
the same report after a replay of the store."""

from __future__ import annotations

from uuid import UUID

from coordinator.core import Core
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.usage_projection import NO_MODEL
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.queries import QueryReply
from whoosh_shared.contract.usage import GetUsage, UsageReport


def finish(core: Core, task_id: UUID, tokens_in: int, tokens_out: int, usd: float) -> None:
    attempt = core.task(task_id).attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x")).accepted
    usage = c.Usage(tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=usd, duration_s=2.0)
    done = c.CompleteTask(task_id=task_id, attempt=attempt, output="ok", usage=usage)
    assert core.send(done).accepted


def rows(report: UsageReport, kind: str) -> dict[str, tuple[int, int, int, float]]:
    return {
        r.name: (r.tasks, r.tokens_in, r.tokens_out, round(r.cost_usd, 6))
        for r in getattr(report, f"by_{kind}")
    }


def test_usage_is_summed_per_key_agent_and_model_and_survives_replay(core: Core) -> None:
    core.register("big", max_concurrent=4, model="m1")
    alice = core.submit(actor="key:whk_alice", model="m1")
    bob = core.submit(actor="key:whk_bob")
    alice_again = core.submit(actor="key:whk_alice", model="m1")
    finish(core, alice, 100, 50, 0.01)
    finish(core, alice_again, 10, 5, 0.002)
    finish(core, bob, 1, 2, 0.0)
    cancelled = core.submit(actor="key:whk_bob")
    assert core.send(c.CancelTask(task_id=cancelled, reason="test")).accepted
    core.submit(actor="key:whk_carol")  # not ended: not counted anywhere

    report = core.projection.usage.report()
    assert rows(report, "key") == {
        "key:whk_alice": (2, 110, 55, 0.012),
        "key:whk_bob": (2, 1, 2, 0.0),  # the cancelled one counts as a task, no tokens
    }
    assert [r.name for r in report.by_key] == ["key:whk_alice", "key:whk_bob"]  # most first
    assert rows(report, "agent") == {"big": (4, 111, 57, 0.012)}
    assert rows(report, "model") == {"m1": (2, 110, 55, 0.012), NO_MODEL: (2, 1, 2, 0.0)}
    assert (report.total.tasks, report.total.tokens_in, report.total.duration_s) == (4, 111, 6.0)
    assert report.since is not None

    replayed = rebuild(core.store).usage.report()
    assert replayed.model_dump() == report.model_dump()


def test_the_coordinator_answers_the_usage_query(core: Core) -> None:
    from whoosh_coordinator.queries import QueryHandler

    core.register("w")
    finish(core, core.submit(actor="key:whk_q"), 3, 4, 0.5)
    reply = QueryReply.model_validate(
        QueryHandler(core.projection).handle_raw(GetUsage.SUBJECT, b"{}").model_dump()
    )
    assert reply.status == "ok"
    report = UsageReport.model_validate(reply.result)
    assert rows(report, "key") == {"key:whk_q": (1, 3, 4, 0.5)}


def test_a_task_without_a_reported_duration_counts_its_run_time(core: Core) -> None:
    core.register("cli")
    task = core.submit(actor="key:whk_cli")
    assert core.run_to_end(task).accepted  # CompleteTask without usage, as CLI agents send
    row = core.projection.usage.report().by_key[0]
    started, finished = core.task(task).started_at, core.task(task).finished_at
    assert row.duration_s == (finished - started).total_seconds() > 0
