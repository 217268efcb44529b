"""`on_exhausted: stop` on a real store (SQLite and PostgreSQL): the moment a budget is
used up, the tasks still running against it are cancelled in the same transaction with a
reason naming the budget, no new one starts, and the stop is recorded once -- also with
two coordinators deciding from remembered copies. `refuse` (the default) lets them
finish."""

from __future__ import annotations

from uuid import UUID

from coordinator.core import Core
from coordinator.test_budgets import ESTIMATE, budget, finish
from coordinator.test_two_writers import handler
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.follower import Follower
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.budgets import SetBudget
from whoosh_shared.contract.enums import TaskStatus

STOPPED = "budget 'global' is exhausted (1000 of 1000 tokens used) and says on_exhausted: stop"


def event_types(store) -> list[str]:
    notifications = store.recorder.select_notifications(start=1, limit=100_000)
    return [n.topic.rsplit(".", 1)[-1] for n in notifications]


def start(core: Core, task_id: UUID) -> None:
    attempt = core.task(task_id).attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x")).accepted


def test_an_exhausted_stop_budget_cancels_what_still_runs(core: Core) -> None:
    core.register("w", max_concurrent=4)
    assert core.send(SetBudget(scope="global", tokens=1000, on_exhausted="stop")).accepted
    first, second, third = core.submit(), core.submit(), core.submit()
    start(core, second)  # running; `third` is assigned, not started: both are stopped
    assert budget(core).reserved_tokens == 3 * ESTIMATE
    finish(core, first, tokens=1000)  # a runaway answer uses the whole budget
    for task_id in (second, third):
        view = core.task(task_id)
        assert view.status is TaskStatus.CANCELLED
        assert view.reason == STOPPED
    view = budget(core)
    assert (view.used_tokens, view.reserved_tokens, view.exhausted) == (1000, 0, True)
    assert core.projection.agent_by_name("w").in_flight == []  # every slot given back
    refused = core.send(c.SubmitTask(prompt="hello"))
    assert refused.code == "limited" and "budget 'global' is exhausted" in refused.reason
    types = event_types(core.store)
    assert types.count("Stopped") == 1 and types.count("Exhausted") == 1
    alerts = {a.rule for a in core.projection.alerts.listed(None, 10)}
    assert "BudgetExhausted" in alerts


def test_a_stopped_tasks_late_report_is_charged_once(core: Core) -> None:
    """The executor's report of the cancelled attempt carries what it had used: real
    use, charged to the budget with the kept output (once), never restarting it."""
    core.register("w", max_concurrent=2)
    assert core.send(SetBudget(scope="global", tokens=1000, on_exhausted="stop")).accepted
    first, second = core.submit(), core.submit()
    start(core, second)
    finish(core, first, tokens=1000)
    usage = c.Usage(tokens_in=40, tokens_out=60)
    for _ in range(2):
        late = core.send(
            c.FailTask(task_id=second, attempt=1, reason="killed", output="partial", usage=usage)
        )
        assert late.accepted and late.ids["status"] == "cancelled"
    assert budget(core).used_tokens == 1100  # the 100 the stopped attempt had used
    assert core.task(second).status is TaskStatus.CANCELLED


def test_refuse_lets_running_work_finish(core: Core) -> None:
    core.register("w", max_concurrent=4)
    assert core.send(SetBudget(scope="global", tokens=1000)).accepted
    first, second = core.submit(), core.submit()
    finish(core, first, tokens=1000)
    assert core.task(second).status is TaskStatus.ASSIGNED
    finish(core, second, tokens=10)
    assert core.task(second).status is TaskStatus.COMPLETED
    assert "Stopped" not in event_types(core.store)


def test_lowering_a_stop_budget_below_its_use_stops_at_once(core: Core) -> None:
    core.register("w", max_concurrent=4)
    assert core.send(SetBudget(scope="global", tokens=5000, on_exhausted="stop")).accepted
    done, running = core.submit(), core.submit()
    finish(core, done, tokens=1200)
    assert core.send(SetBudget(scope="global", tokens=1000, on_exhausted="stop")).accepted
    view = core.task(running)
    assert view.status is TaskStatus.CANCELLED
    assert view.reason == (
        "budget 'global' is exhausted (1200 of 1000 tokens used) and says on_exhausted: stop"
    )
    assert budget(core).exhausted


def test_a_stop_budget_of_one_agent_leaves_other_agents_work_alone(core: Core) -> None:
    core.register("paid", max_concurrent=2)
    core.register("local", max_concurrent=2)
    assert core.send(SetBudget(scope="agent:paid", tokens=600, on_exhausted="stop")).accepted
    first, second = core.submit(agent="paid"), core.submit(agent="paid")
    elsewhere = core.submit(agent="local")
    finish(core, first, tokens=700)
    assert core.task(second).status is TaskStatus.CANCELLED
    assert "budget 'agent:paid' is exhausted (700 of 600 tokens" in core.task(second).reason
    assert core.task(elsewhere).status is TaskStatus.ASSIGNED
    assert core.submit(agent="local")  # other scopes take new work
    refused = core.send(c.SubmitTask(prompt="hello", agent="paid"))
    assert refused.code == "limited" and "agent:paid" in refused.reason


def test_two_coordinators_stop_once_and_start_nothing_after(store_url: str) -> None:
    """b decides from copies remembered before a exhausted the budget: its placement and
    its report both meet the store's version check, are decided again from fresh state,
    and neither starts new work nor stops twice."""
    a, b = handler(store_url), handler(store_url)
    try:
        spec = AgentSpec(name="big", command=["cat"], max_concurrent=20)
        assert a.handle(c.RegisterAgent(spec=spec)).accepted
        assert a.handle(SetBudget(scope="global", tokens=ESTIMATE * 10, on_exhausted="stop"))
        ids: list[UUID] = []
        for i in range(6):  # both writers place work, each remembering the budget
            h = (a, b)[i % 2]
            Follower(h.store, h.projection).catch_up()
            reply = h.handle(c.SubmitTask(prompt="hello"))
            assert reply.accepted, reply.reason
            ids.append(UUID(reply.ids["task_id"]))
            Assigner(h, timeout_grace_s=0).assign_pending()
        for h in (a, b):
            Follower(h.store, h.projection).catch_up()
        assert all(a.projection.tasks[i].status is TaskStatus.ASSIGNED for i in ids)
        usage = c.Usage(tokens_in=ESTIMATE * 5, tokens_out=ESTIMATE * 5)
        assert a.handle(c.CompleteTask(task_id=ids[0], attempt=1, output="x", usage=usage))
        # b has not followed: it still remembers a budget with room and five tasks running
        late = b.handle(c.SubmitTask(prompt="hello"))
        assert late.code == "limited" and "budget 'global' is exhausted" in late.reason
        small = c.Usage(tokens_in=1, tokens_out=1)
        kept = b.handle(c.CompleteTask(task_id=ids[1], attempt=1, output="y", usage=small))
        assert kept.accepted and kept.ids["status"] == "cancelled"
        Follower(a.store, a.projection).catch_up()
        statuses = [a.projection.tasks[i].status for i in ids[1:]]
        assert statuses == [TaskStatus.CANCELLED] * 5
        types = event_types(a.store)
        exhausted_at = types.index("Exhausted")
        assert "Assigned" not in types[exhausted_at:]
        assert types.count("Stopped") == 1
        view = a.projection.budgets.listed()[0]
        assert (view.used_tokens, view.reserved_tokens) == (ESTIMATE * 10 + 2, 0)
    finally:
        a.store.close()
        b.store.close()


def test_a_project_budget_covers_its_threads_answers(core: Core) -> None:
    """project:<name> holds every answer of the project's threads (reserved, charged,
    and with `stop` cancelled when it is used up); other projects are untouched."""
    from whoosh_shared.contract import threads as t

    for name in ("a1", "a2"):
        core.register(name)
    budget_set = SetBudget(scope="project:web", tokens=2000, on_exhausted="stop")
    assert core.send(budget_set).accepted
    participants = [t.Participant(agent=n) for n in ("a1", "a2")]
    started = core.send(t.StartThread(topic="q?", project="web", participants=participants))
    assert started.accepted, started.reason
    other = core.send(t.StartThread(topic="q?", project="api", participants=participants))
    assert other.accepted
    held = budget(core, "project:web")
    assert held.reserved_tokens > 0
    view = core.projection.threads.threads[UUID(started.ids["thread_id"])]
    first, second = view.rounds[0].tasks["a1"], view.rounds[0].tasks["a2"]
    finish(core, first, tokens=2500)
    assert core.task(second).status is TaskStatus.CANCELLED
    assert "budget 'project:web' is exhausted (2500 of 2000 tokens" in core.task(second).reason
    api = core.projection.threads.threads[UUID(other.ids["thread_id"])]
    assert {core.task(i).status for i in api.rounds[0].tasks.values()} == {TaskStatus.ASSIGNED}
    again = core.send(t.StartThread(topic="more?", project="web", participants=participants))
    assert again.code == "limited"
    assert again.reason.startswith("budget 'project:web' is exhausted: 2500 of 2000 tokens")


def test_a_lagging_projection_does_not_skip_a_budget_set_elsewhere(store_url: str) -> None:
    """b has not folded the budget a just set: its placement still reserves on it (read
    from the store, since the log holds events past b's projection), and the task's end
    is charged. Found end to end: 20 submits right after a SetBudget overspent 3x."""
    a, b = handler(store_url), handler(store_url)
    try:
        spec = AgentSpec(name="w", command=["cat"], max_concurrent=4)
        assert b.handle(c.RegisterAgent(spec=spec)).accepted
        assert a.handle(SetBudget(scope="global", tokens=ESTIMATE + 1)).accepted
        assert b.projection.budgets.scopes == set()  # b's projection lags...
        b.heard_of(a.store.recorder.max_notification_id())  # ...a's nudge said so
        first = b.handle(c.SubmitTask(prompt="hello"))
        assert first.accepted
        Follower(b.store, b.projection).catch_up()
        view = b.projection.budgets.listed()[0]
        assert view.reserved_tokens == ESTIMATE
        second = UUID(b.handle(c.SubmitTask(prompt="hello")).ids["task_id"])
        Assigner(b, timeout_grace_s=0).assign_pending()
        Follower(b.store, b.projection).catch_up()
        assert b.projection.tasks[second].status is TaskStatus.FAILED  # could not be held
        task_id = UUID(first.ids["task_id"])
        usage = c.Usage(tokens_in=1, tokens_out=ESTIMATE - 1)
        assert a.handle(c.StartTask(task_id=task_id, attempt=1, executor_id="x")).accepted
        assert a.handle(c.CompleteTask(task_id=task_id, attempt=1, output="ok", usage=usage))
        Follower(b.store, b.projection).catch_up()
        view = b.projection.budgets.listed()[0]
        assert (view.used_tokens, view.reserved_tokens) == (ESTIMATE, 0)
    finally:
        a.store.close()
        b.store.close()


def test_a_threads_own_stop_budget_ends_its_round_with_abstentions(core: Core) -> None:
    """A thread started with budget_on_exhausted=stop: the first answer that uses up its
    budget cancels the others, which count as abstentions naming the budget."""
    from whoosh_shared.contract import threads as t

    for name in ("a1", "a2", "a3"):
        core.register(name)
    started = core.send(
        t.StartThread(
            topic="2+2?", answer_type=t.AnswerType.INT, budget_tokens=2000,
            budget_on_exhausted="stop",
            participants=[t.Participant(agent=n) for n in ("a1", "a2", "a3")],
        )
    )  # fmt: skip
    assert started.accepted, started.reason
    thread_id = UUID(started.ids["thread_id"])
    tasks = core.projection.threads.threads[thread_id].rounds[0].tasks
    attempt = core.task(tasks["a1"]).attempt
    assert core.send(c.StartTask(task_id=tasks["a1"], attempt=attempt, executor_id="x")).accepted
    usage = c.Usage(tokens_in=1000, tokens_out=1500)
    done = c.CompleteTask(task_id=tasks["a1"], attempt=attempt, output="ANSWER: 4", usage=usage)
    assert core.send(done).accepted
    view = core.projection.threads.threads[thread_id]
    assert view.state is t.ThreadState.CLOSED
    reasons = {v.voter: v.reason for v in view.votes}
    scope = f"thread:{thread_id}"
    for agent in ("a2", "a3"):
        assert core.task(tasks[agent]).status is TaskStatus.CANCELLED
        assert reasons[agent].startswith(f"budget '{scope}' is exhausted (2500 of 2000 tokens")
