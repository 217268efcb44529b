"""Executions on a coordinator core with a real store: steps become tasks in the same
save as what made them ready, outputs flow through templates, failures, retries,
cancellation, approvals and timers."""

from __future__ import annotations

from datetime import timedelta

from coordinator.core import Core
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import events as ev
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.enums import TaskStatus

from workflows.flows import (
    DIAMOND,
    create,
    execution,
    finish,
    shell_agent,
    start,
    statuses,
    step_task,
)


def test_a_diamond_runs_in_order_with_outputs_flowing(core: Core) -> None:
    shell_agent(core)
    assert create(core, DIAMOND).accepted
    run = start(core, "diamond", word="yo")
    assert statuses(core, run) == {"a": "running", "b": "pending", "c": "pending", "d": "pending"}
    a = step_task(core, run, "a")
    assert core.task(a).prompt == "echo a yo"
    assert core.task(a).origin == {"kind": "execution", "id": str(run), "step": "a"}
    finish(core, a, "a yo\n")
    assert statuses(core, run)["b"] == statuses(core, run)["c"] == "running"
    assert core.task(step_task(core, run, "b")).prompt == "echo b after a yo"
    finish(core, step_task(core, run, "c"), "c\n")
    assert statuses(core, run)["d"] == "pending"
    finish(core, step_task(core, run, "b"), "b after a yo\n")
    d = step_task(core, run, "d")
    assert core.task(d).prompt == "echo d b after a yo"
    finish(core, d, "d\n")
    view = execution(core, run)
    assert view.status == "succeeded"
    assert [s.attempts for s in view.steps] == [1, 1, 1, 1]
    assert all(s.agent == "sh" and s.duration_s is not None for s in view.steps)


def test_max_parallel_holds_ready_steps_back(core: Core) -> None:
    shell_agent(core)
    source = DIAMOND.replace("max_parallel: 4", "max_parallel: 1")
    assert create(core, source).accepted
    run = start(core, "diamond")
    finish(core, step_task(core, run, "a"))
    assert sorted(statuses(core, run).values()) == ["pending", "pending", "running", "succeeded"]
    running = next(s for s, st in statuses(core, run).items() if st == "running")
    finish(core, step_task(core, run, running))
    assert list(statuses(core, run).values()).count("running") == 1


def test_a_failed_step_fails_the_run_and_retry_reruns_only_it(core: Core) -> None:
    shell_agent(core)
    assert create(core, DIAMOND).accepted
    run = start(core, "diamond")
    finish(core, step_task(core, run, "a"))
    c_task = step_task(core, run, "c")
    finish(core, step_task(core, run, "b"), ok=False)
    view = execution(core, run)
    assert view.status == "failed" and "step 'b' failed" in (view.reason or "")
    assert statuses(core, run) == {"a": "succeeded", "b": "failed", "c": "cancelled",
                                   "d": "skipped"}  # fmt: skip
    assert core.task(c_task).status is TaskStatus.CANCELLED
    reply = core.send(w.RetryExecution(execution_id=run))
    assert reply.accepted, reply.reason
    assert reply.ids["steps"] == "b,c,d"
    assert statuses(core, run) == {"a": "succeeded", "b": "running", "c": "running",
                                   "d": "pending"}  # fmt: skip
    assert step_task(core, run, "c") != c_task
    finish(core, step_task(core, run, "b"))
    finish(core, step_task(core, run, "c"))
    finish(core, step_task(core, run, "d"))
    assert execution(core, run).status == "succeeded"
    assert execution(core, run).round == 1


def test_retry_from_a_step_reruns_it_and_what_follows(core: Core) -> None:
    shell_agent(core)
    assert create(core, DIAMOND).accepted
    run = start(core, "diamond")
    for step in ("a", "b", "c", "d"):
        finish(core, step_task(core, run, step))
    assert execution(core, run).status == "succeeded"
    reply = core.send(w.RetryExecution(execution_id=run, from_step="c"))
    assert reply.accepted and reply.ids["steps"] == "c,d"
    assert statuses(core, run) == {"a": "succeeded", "b": "succeeded", "c": "running",
                                   "d": "pending"}  # fmt: skip
    running = core.send(w.RetryExecution(execution_id=run))
    assert running.code == "bad_state" and "still running" in (running.reason or "")


def test_cancel_stops_running_steps_and_frees_agents(core: Core) -> None:
    shell_agent(core, slots=4)
    assert create(core, DIAMOND).accepted
    run = start(core, "diamond")
    finish(core, step_task(core, run, "a"))
    core.assigner.assign_pending()
    b, c_ = step_task(core, run, "b"), step_task(core, run, "c")
    assert len(core.projection.agent_by_name("sh").in_flight) == 2
    reply = core.send(w.CancelExecution(execution_id=run, reason="stop"))
    assert reply.accepted, reply.reason
    assert core.task(b).status is core.task(c_).status is TaskStatus.CANCELLED
    assert core.projection.agent_by_name("sh").in_flight == []
    assert execution(core, run).status == "cancelled"
    again = core.send(w.CancelExecution(execution_id=run))
    assert again.code == "bad_state"


APPROVAL = """
whoosh: workflow/v1
name: gated
steps:
  ask: {type: approval, message: "ship {{ execution.workflow }}?", timeout: 1h}
  ship: {type: shell, needs: [ask], command: "echo ship"}
  wait: {type: wait, needs: [ship], duration: 10m}
  after: {type: set, needs: [wait], fields: {done: true, by: "{{ steps.ask.json.by }}"}}
"""


def test_approval_then_a_wait_timer(core: Core) -> None:
    shell_agent(core)
    assert create(core, APPROVAL).accepted
    run = start(core, "gated")
    step = execution(core, run).steps[0]
    assert step.status == "waiting" and step.waiting_for == "approval"
    assert step.message == "ship gated?"
    bad = core.send(w.DecideApproval(execution_id=run, step="ship", approve=True))
    assert bad.code == "bad_state"
    ok = core.send(w.DecideApproval(execution_id=run, step="ask", approve=True, actor="ann"))
    assert ok.accepted, ok.reason
    finish(core, step_task(core, run, "ship"))
    waiting = execution(core, run).steps[2]
    assert waiting.status == "waiting" and waiting.wake_at is not None
    now = core.handler.clock()
    assert core.projection.workflows.due(now) == []
    later = now + timedelta(minutes=11)
    core.handler.clock = lambda: later
    due = core.projection.workflows.due(later)
    assert due == [run]
    assert core.handler.workflows.wake_due(due) == 1
    view = execution(core, run)
    assert view.status == "succeeded"
    assert view.steps[3].output == '{"done": true, "by": "ann"}'


def test_rejection_and_approval_timeout_fail_the_step(core: Core) -> None:
    assert create(core, APPROVAL).accepted
    run = start(core, "gated")
    core.send(
        w.DecideApproval(execution_id=run, step="ask", approve=False, comment="no", actor="bo")
    )
    view = execution(core, run)
    assert view.status == "failed" and view.steps[0].error == "rejected by bo: no"
    run2 = start(core, "gated")
    later = core.handler.clock() + timedelta(hours=2)
    core.handler.clock = lambda: later
    core.handler.workflows.wake_due(core.projection.workflows.due(later))
    assert execution(core, run2).steps[0].error == "approval timed out"


def test_deadline_times_the_run_out(core: Core) -> None:
    shell_agent(core)
    assert create(core, DIAMOND.replace("max_parallel: 4", "deadline: 5m")).accepted
    run = start(core, "diamond")
    a = step_task(core, run, "a")
    later = core.handler.clock() + timedelta(minutes=6)
    core.handler.clock = lambda: later
    core.handler.workflows.wake_due(core.projection.workflows.due(later))
    assert execution(core, run).status == "timed_out"
    assert core.task(a).status is TaskStatus.CANCELLED


BRANCHES = """
whoosh: workflow/v1
name: branches
inputs:
  n: {type: integer, default: 5}
steps:
  check:
    type: if
    conditions: [{left: "{{ inputs.n }}", operator: gt, right: 3}]
  big: {type: shell, needs: {check: true}, command: "echo big"}
  small: {type: shell, needs: {check: false}, command: "echo small"}
  join: {type: merge, needs: [big, small]}
  oops: {type: fail, needs: [join], message: "stop here", on_error: route}
  handler: {type: set, needs: {oops: error}, fields: {why: "{{ steps.oops.error }}"}}
"""


def test_branch_not_taken_is_skipped_and_merge_takes_the_rest(core: Core) -> None:
    shell_agent(core)
    assert create(core, BRANCHES).accepted
    run = start(core, "branches", n="2")
    got = statuses(core, run)
    assert got["big"] == "skipped" and got["small"] == "running"
    finish(core, step_task(core, run, "small"), "small")
    view = execution(core, run)
    assert {s.id: s.status for s in view.steps} == {
        "check": "succeeded", "big": "skipped", "small": "succeeded", "join": "succeeded",
        "oops": "failed", "handler": "succeeded",
    }  # fmt: skip
    assert view.steps[3].output == '["small"]'
    assert view.steps[5].output == '{"why": "stop here"}'
    assert view.status == "succeeded"


def test_run_refusals_name_the_problem(core: Core) -> None:
    assert create(core, BRANCHES).accepted
    wrong = core.send(w.RunWorkflow(workflow="branches", inputs={"n": "many", "x": 1}))
    assert wrong.code == "invalid"
    assert "input 'n' must be a integer" in (wrong.reason or "")
    assert "unknown input 'x'" in (wrong.reason or "")
    unknown = core.send(w.RunWorkflow(workflow="nope"))
    assert unknown.code == "not_found" and "nope" in (unknown.reason or "")


def test_versions_are_pinned_by_executions(core: Core) -> None:
    shell_agent(core)
    assert create(core, DIAMOND).ids["version"] == "1"
    assert create(core, DIAMOND).ids["version"] == "1"  # the same text adds nothing
    run = start(core, "diamond")
    changed = DIAMOND.replace('echo c"', 'echo C2"')
    assert create(core, changed).ids["version"] == "2"
    finish(core, step_task(core, run, "a"))
    assert core.task(step_task(core, run, "c")).prompt == "echo c"
    assert execution(core, run).version == 1
    run2 = start(core, "diamond")
    finish(core, step_task(core, run2, "a"))
    assert core.task(step_task(core, run2, "c")).prompt == "echo C2"


def test_replay_rebuilds_workflows_and_executions_equal_to_live(core: Core) -> None:
    from whoosh_coordinator.replay import rebuild

    shell_agent(core, slots=60)
    assert create(core, DIAMOND).accepted
    assert create(core, BRANCHES).accepted
    runs = [start(core, "diamond") for _ in range(20)] + [start(core, "branches")]
    for i, run in enumerate(runs[:20]):
        finish(core, step_task(core, run, "a"))
        finish(core, step_task(core, run, "b"), ok=i % 3 != 0)
    core.send(w.CancelExecution(execution_id=runs[-1]))
    live = core.projection
    rebuilt = rebuild(core.store)
    assert rebuilt.workflows.workflows == live.workflows.workflows
    assert rebuilt.workflows.executions == live.workflows.executions
    assert rebuilt.tasks == live.tasks
    statuses = [execution(core, r).status for r in runs]
    assert statuses.count("failed") == 7 and statuses.count("cancelled") == 1


STDERR_FLOW = """
whoosh: workflow/v1
name: warnings
steps:
  build: {type: shell, command: "make", on_error: continue}
  report: {type: shell, needs: [build], command: "echo built"}
  triage: {type: shell, needs: [report], command: "why: {{ steps.build.stderr | tail(30) }} / {{ steps.build.error }} / {{ steps.report.stderr }}"}
"""  # noqa: E501


def test_a_steps_stderr_tail_flows_into_later_steps_and_survives_replay(core: Core) -> None:
    shell_agent(core)
    assert create(core, STDERR_FLOW).accepted
    run = start(core, "warnings")
    noise = "cc -c main.c\n" * 50
    finish(core, step_task(core, run, "build"), "", ok=False,
           stderr=noise + "main.c:3: no such header\n")  # fmt: skip
    steps = {s.id: s for s in execution(core, run).steps}
    assert steps["build"].stderr.endswith("main.c:3: no such header\n")
    assert steps["build"].error == "exit code 1"  # the failure reason stays apart
    assert core.task(step_task(core, run, "build")).stderr.endswith("no such header\n")

    # a coordinator started afresh on the same store goes on from the replayed events
    store = open_store(core.url)
    try:
        rebuilt = rebuild(store)
        assert rebuilt.workflows.executions == core.projection.workflows.executions
        assert rebuilt.tasks == core.projection.tasks
        handler = CommandHandler(store, rebuilt, on_saved=Follower(store, rebuilt).fold_saved)
        again = Core(core.url, store, rebuilt, handler, Assigner(handler, timeout_grace_s=0))
        finish(again, step_task(again, run, "report"), "built\n", stderr="warning: cold\n")
        prompt = again.task(step_task(again, run, "triage")).prompt
        assert prompt == "why: in.c\nmain.c:3: no such header\n / exit code 1 / warning: cold\n"
    finally:
        store.close()


def test_events_stored_before_the_stderr_tail_load_with_it_empty(core: Core) -> None:
    old = {"TaskCompleted": {"attempt": 1, "output": "x"},
           "TaskFailed": {"attempt": 1, "reason": "exit code 1"},
           "TaskAttemptFailed": {"attempt": 1, "reason": "exit code 1"},
           "TaskOutputKept": {"attempt": 1},
           "ExecutionStepEnded": {"step": "a", "status": "succeeded"}}  # fmt: skip
    for name, data in old.items():
        assert ev.EVENT_TYPES[name].model_validate(data).stderr == "", name  # type: ignore[attr-defined]
    core.register("w", capabilities=["x"])
    task_id = core.submit(capabilities=["x"])
    assert core.run_to_end(task_id).accepted  # an executor that reports no stderr
    assert core.task(task_id).stderr == ""
