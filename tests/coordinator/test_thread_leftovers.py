"""A thread that closes while answers are still out (a human decides, someone closes it,
an escalation rule closes it) cancels those tasks in the same transaction, naming the
thread: nobody would read them, and they would keep spending. SQLite and PostgreSQL."""

from __future__ import annotations

from uuid import UUID

import pytest
from coordinator.core import Core
from coordinator.test_threads import AGENTS, answer, start, view
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.enums import TaskStatus


@pytest.fixture
def fleet(core: Core) -> Core:
    for name in AGENTS:
        core.register(name)
    return core


def round_tasks(core: Core, thread_id: UUID) -> dict[str, UUID]:
    return view(core, thread_id).rounds[-1].tasks


def test_a_human_decision_mid_round_cancels_the_answers_still_out(fleet: Core) -> None:
    thread_id = start(fleet)
    tasks = round_tasks(fleet, thread_id)
    answer(fleet, thread_id, "a1", "ANSWER: 4")
    running = tasks["a2"]
    attempt = fleet.task(running).attempt
    assert fleet.send(c.StartTask(task_id=running, attempt=attempt, executor_id="x")).accepted
    reply = fleet.send(t.DecideThread(thread_id=thread_id, decision="4", actor="key ab (ops)"))
    assert reply.accepted, reply.reason
    assert fleet.task(tasks["a1"]).status is TaskStatus.COMPLETED  # its vote was read
    for agent in ("a2", "a3"):  # one running, one only assigned
        left = fleet.task(tasks[agent])
        assert left.status is TaskStatus.CANCELLED
        assert (
            left.reason
            == f"thread {thread_id} closed (human_decision) before this answer was needed"
        )
    assert all(fleet.projection.agent_by_name(a).in_flight == [] for a in AGENTS)
    done = view(fleet, thread_id)
    assert (done.outcome, done.decision) == ("human_decision", "4")
    # the stopped attempt's late report is kept on its task; the thread stays decided
    late = fleet.send(c.CompleteTask(task_id=running, attempt=attempt, output="ANSWER: 5"))
    assert late.accepted and late.ids["status"] == "cancelled"
    assert view(fleet, thread_id).decision == "4"


def test_closing_a_thread_cancels_its_open_round(fleet: Core) -> None:
    thread_id = start(fleet)
    tasks = round_tasks(fleet, thread_id)
    assert fleet.send(t.CloseThread(thread_id=thread_id, reason="wrong question")).accepted
    assert {fleet.task(i).status for i in tasks.values()} == {TaskStatus.CANCELLED}


def test_an_escalation_rule_that_closes_cancels_the_rest_of_the_round(fleet: Core) -> None:
    rule = t.EscalationRule(name="junk", when={"unparseable_over": 0}, do=[t.Action(kind="close")])
    thread_id = start(fleet, escalation=[rule])
    tasks = round_tasks(fleet, thread_id)
    answer(fleet, thread_id, "a1", "no answer line at all")
    closed = view(fleet, thread_id)
    assert (closed.state, closed.outcome) == (t.ThreadState.CLOSED, "escalated")
    statuses = {agent: fleet.task(tasks[agent]).status for agent in ("a2", "a3")}
    assert statuses == {"a2": TaskStatus.CANCELLED, "a3": TaskStatus.CANCELLED}
    assert not [v for v in fleet.projection.tasks.values() if v.status is TaskStatus.ASSIGNED]


def test_a_thread_decided_by_its_votes_leaves_nothing_running(fleet: Core) -> None:
    """A round is tallied only when every answer is in, so a decision by vote has no
    leftovers: nothing is cancelled."""
    thread_id = start(fleet)
    for agent in AGENTS:
        answer(fleet, thread_id, agent, "ANSWER: 4")
    assert view(fleet, thread_id).decision == "4"
    statuses = {v.status for v in fleet.projection.tasks.values()}
    assert statuses == {TaskStatus.COMPLETED}
