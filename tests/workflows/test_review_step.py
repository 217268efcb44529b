"""A workflow's `review` step: a thread of agents judges a subject rendered from earlier
steps; its decision, recorded with the last vote, advances the execution in the same
save (approve: the step succeeds; anything else: it fails, and can be routed)."""

from __future__ import annotations

from uuid import UUID

from coordinator.core import Core
from whoosh_coordinator.replay import rebuild
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t

from workflows.flows import create, execution, finish, shell_agent, start, statuses, step_task

REVIEWERS = ("r1", "r2", "r3")
FLOW = """
whoosh: workflow/v1
name: reviewed
steps:
  build: {type: shell, command: "echo the change"}
  review:
    type: review
    needs: [build]
    topic: "Is this change safe?"
    subject: "{{ steps.build.output }}"
    participants: [{agent: r1}, {agent: r2}, {agent: r3, veto: true}]
    on_error: route
  ship: {type: shell, needs: [review], command: "echo ship {{ steps.review.output }}"}
  rework: {type: shell, needs: {review: error}, command: "echo rework"}
"""


def fleet(core: Core) -> None:
    shell_agent(core)
    for name in REVIEWERS:
        core.register(name)


def thread_of(core: Core, run: UUID) -> t.ThreadView:
    step = next(s for s in execution(core, run).steps if s.id == "review")
    assert step.thread_id is not None and step.task_id is None, step
    return core.projection.threads.threads[step.thread_id]


def vote(core: Core, thread: t.ThreadView, agent: str, verdict: str) -> None:
    task_id = thread.rounds[-1].tasks[agent]
    attempt = core.task(task_id).attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x")).accepted
    reply = core.send(
        c.CompleteTask(task_id=task_id, attempt=attempt, output=f"fine.\nVERDICT: {verdict}")
    )
    assert reply.accepted, reply.reason


def test_approval_by_the_reviewers_lets_the_next_step_run(core: Core) -> None:
    fleet(core)
    assert create(core, FLOW).accepted
    run = start(core, "reviewed")
    finish(core, step_task(core, run, "build"), "the change\n")
    thread = thread_of(core, run)
    assert thread.kind is t.ThreadKind.REVIEW and thread.actor == f"execution {run}"
    assert "the change" in core.task(thread.rounds[0].tasks["r1"]).prompt  # the subject
    assert statuses(core, run)["review"] == "running"
    for agent in REVIEWERS:
        vote(core, thread, agent, "approve")
    assert statuses(core, run) == {
        "build": "succeeded", "review": "succeeded", "ship": "running", "rework": "skipped",
    }  # fmt: skip
    assert core.task(step_task(core, run, "ship")).prompt == "echo ship approve"


def test_a_veto_routes_the_step_to_its_error_port(core: Core) -> None:
    fleet(core)
    assert create(core, FLOW).accepted
    run = start(core, "reviewed")
    finish(core, step_task(core, run, "build"))
    thread = thread_of(core, run)
    vote(core, thread, "r1", "approve")
    vote(core, thread, "r2", "approve")
    vote(core, thread, "r3", "request_changes")  # the veto holder
    got = {s.id: s for s in execution(core, run).steps}
    assert got["review"].status == "failed" and got["review"].port == "error"
    assert "review vetoed" in (got["review"].error or "")
    assert got["rework"].status == "running" and got["ship"].status == "skipped"


def test_cancelling_the_execution_closes_the_thread_and_its_open_answers(core: Core) -> None:
    fleet(core)
    assert create(core, FLOW).accepted
    run = start(core, "reviewed")
    finish(core, step_task(core, run, "build"))
    thread = thread_of(core, run)
    vote(core, thread, "r1", "approve")
    from whoosh_shared.contract import workflows as w

    assert core.send(w.CancelExecution(execution_id=run, reason="stop")).accepted
    after = core.projection.threads.threads[thread.id]
    assert after.state is t.ThreadState.CLOSED
    open_tasks = [after.rounds[-1].tasks[a] for a in ("r2", "r3")]
    assert {core.task(task).status.value for task in open_tasks} == {"cancelled"}
    assert execution(core, run).status == "cancelled"


def test_a_review_nobody_can_take_fails_its_step_naming_why(core: Core) -> None:
    shell_agent(core)
    assert create(core, FLOW).accepted
    run = start(core, "reviewed")
    finish(core, step_task(core, run, "build"))
    got = {s.id: s for s in execution(core, run).steps}
    assert got["review"].status == "failed"
    assert "unknown agent 'r1'" in (got["review"].error or "")
    assert got["rework"].status == "running"  # routed like any failure


def test_replay_rebuilds_the_review_step(core: Core) -> None:
    fleet(core)
    assert create(core, FLOW).accepted
    run = start(core, "reviewed")
    finish(core, step_task(core, run, "build"))
    thread = thread_of(core, run)
    for agent in REVIEWERS:
        vote(core, thread, agent, "approve")
    rebuilt = rebuild(core.store)
    live = execution(core, run)
    again = rebuilt.workflows.execution(run, rebuilt.tasks)
    assert again is not None
    assert [(s.id, s.status, s.thread_id) for s in again.steps] == [
        (s.id, s.status, s.thread_id) for s in live.steps
    ]


def test_a_review_without_reviewers_is_refused_when_stored(core: Core) -> None:
    who = "    participants: [{agent: r1}, {agent: r2}, {agent: r3, veto: true}]\n"
    source = FLOW.replace(who, "")
    refused = create(core, source.replace("name: reviewed", "name: nobody-reviews"))
    assert not refused.accepted
    assert "line 6: steps.review" in refused.reason
    assert "give exactly one of 'participants' and 'address'" in refused.reason
