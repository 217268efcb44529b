"""Threads on a real store (SQLite and PostgreSQL): rounds are ordinary tasks, a task's
end records its vote in the same transaction, replay rebuilds every thread."""

from __future__ import annotations

from uuid import UUID

import pytest
from coordinator.core import Core
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import read_envelopes
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import TaskStatus

AGENTS = ("a1", "a2", "a3")


def start(core: Core, **fields) -> UUID:
    fields.setdefault("topic", "What is 2+2?")
    fields.setdefault("participants", [t.Participant(agent=name) for name in AGENTS])
    fields.setdefault("answer_type", t.AnswerType.INT)
    reply = core.send(t.StartThread(**fields))
    assert reply.accepted, reply.reason
    return UUID(reply.ids["thread_id"])


def view(core: Core, thread_id: UUID) -> t.ThreadView:
    return core.projection.threads.threads[thread_id]


def answer(core: Core, thread_id: UUID, agent: str, output: str, ok: bool = True) -> c.CommandReply:
    task_id = view(core, thread_id).rounds[-1].tasks[agent]
    attempt = core.task(task_id).attempt
    assert core.task(task_id).agent == agent  # pinned: one agent per participant
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x")).accepted
    if ok:
        reply = core.send(c.CompleteTask(task_id=task_id, attempt=attempt, output=output))
    else:
        reply = core.send(
            c.FailTask(task_id=task_id, attempt=attempt, reason=output, retryable=False)
        )
    assert reply.accepted, reply.reason
    return reply


@pytest.fixture
def fleet(core: Core) -> Core:
    for name in AGENTS:
        core.register(name)
    return core


def test_a_question_reaches_the_majority_answer(fleet: Core) -> None:
    thread_id = start(fleet)
    first = view(fleet, thread_id).rounds[0]
    assert set(first.tasks) == set(AGENTS)
    task = fleet.task(first.tasks["a1"])
    assert task.origin == {
        "kind": "thread",
        "id": str(thread_id),
        "round": "1",
        "participant": "a1",
        "project": "default",
    }
    assert "ANSWER: <an integer>" in task.prompt and "What is 2+2?" in task.prompt
    answer(fleet, thread_id, "a1", "2+2 is four\nANSWER: 4")
    answer(fleet, thread_id, "a2", "ANSWER: 5")
    assert view(fleet, thread_id).state is t.ThreadState.DELIBERATING
    answer(fleet, thread_id, "a3", "ANSWER: 4")
    done = view(fleet, thread_id)
    assert (done.state, done.outcome, done.decision) == (t.ThreadState.CLOSED, "consensus", "4")
    assert done.rounds[0].tally == {"4": 2.0, "5": 1.0}
    assert [m.author for m in done.messages] == ["a1", "a2", "a3"]


def test_the_vote_is_saved_with_the_task_end(fleet: Core) -> None:
    """One transaction: the CompleteTask's notification ids include the thread's events."""
    thread_id = start(fleet)
    before = fleet.events()
    answer(fleet, thread_id, "a1", "ANSWER: 4")

    types = [e.type for e in read_envelopes(fleet.store, before)]
    print(types)
    assert types == [
        "TaskStarted",
        "TaskCompleted",
        "AgentSlotReleased",
        "ThreadMessagePosted",
        "ThreadVoteCast",
    ]


def test_unparseable_is_reasked_once_then_abstains(fleet: Core) -> None:
    thread_id = start(fleet)
    first_task = view(fleet, thread_id).rounds[0].tasks["a1"]
    answer(fleet, thread_id, "a1", "I think it is four")
    again = view(fleet, thread_id).rounds[0].tasks["a1"]
    assert again != first_task
    assert "could not be read as a vote" in fleet.task(again).prompt
    answer(fleet, thread_id, "a1", "ANSWER: 4\nANSWER: 5")
    answer(fleet, thread_id, "a2", "ANSWER: 4")
    answer(fleet, thread_id, "a3", "ANSWER: 4")
    done = view(fleet, thread_id)
    assert done.decision == "4"
    abstained = [v for v in done.votes if v.voter == "a1"]
    assert abstained[0].value is None and "2 ANSWER lines" in abstained[0].reason


def test_a_failed_task_is_an_abstention_and_no_quorum_ends_without_decision(fleet: Core) -> None:
    thread_id = start(fleet)
    answer(fleet, thread_id, "a1", "exit code 1", ok=False)
    answer(fleet, thread_id, "a2", "exit code 1", ok=False)
    answer(fleet, thread_id, "a3", "ANSWER: 4")
    done = view(fleet, thread_id)
    assert (done.state, done.outcome, done.decision) == (t.ThreadState.CLOSED, "no_decision", None)
    assert done.rounds[0].outcome == "no_quorum"


def test_a_review_with_a_veto(fleet: Core) -> None:
    participants = [
        t.Participant(agent="a1", weight=2),
        t.Participant(agent="a2", weight=2),
        t.Participant(agent="a3", role="verifier", veto=True),
    ]
    thread_id = start(
        fleet,
        kind=t.ThreadKind.REVIEW,
        participants=participants,
        subject="def add(a, b): return a - b",
    )
    assert "return a - b" in fleet.task(view(fleet, thread_id).rounds[0].tasks["a3"]).prompt
    answer(fleet, thread_id, "a1", "VERDICT: approve")
    answer(fleet, thread_id, "a2", "VERDICT: approve")
    answer(fleet, thread_id, "a3", "tests fail\nVERDICT: request_changes")
    done = view(fleet, thread_id)
    assert (done.outcome, done.decision) == ("vetoed", "request_changes")


def test_discussion_rounds_then_escalation_to_a_human(fleet: Core) -> None:
    rule = t.EscalationRule(
        name="stuck",
        when={"all": [{"same_split": 2}]},
        do=[t.Action(kind="notify"), t.Action(kind="wait_for_human")],
    )
    thread_id = start(fleet, protocol=t.Protocol(max_rounds=3), escalation=[rule])
    for agent, value in zip(AGENTS, ("4", "4", "5"), strict=True):
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    assert view(fleet, thread_id).decision == "4"  # majority in round 1 already
    thread_id = start(
        fleet, protocol=t.Protocol(max_rounds=3, rule=t.Rule.UNANIMOUS), escalation=[rule]
    )
    for agent, value in zip(AGENTS, ("4", "4", "5"), strict=True):
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    second = view(fleet, thread_id)
    assert len(second.rounds) == 2 and second.rounds[0].outcome == "split"
    assert "Round 1 ended split" in fleet.task(second.rounds[1].tasks["a3"]).prompt
    for agent, value in zip(AGENTS, ("5", "4", "4"), strict=True):  # positions traded
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    waiting = view(fleet, thread_id)
    assert waiting.state is t.ThreadState.AWAITING_HUMAN and waiting.escalations == ["stuck"]
    assert len(waiting.rounds) == 2  # no third round while a human is awaited
    alerts = fleet.projection.alerts.listed(None, 10)
    assert [(a.rule, a.labels["thread"]) for a in alerts] == [("ThreadEscalated", str(thread_id))]
    reply = fleet.send(t.DecideThread(thread_id=thread_id, decision="4", actor="key ab (ops)"))
    assert reply.accepted
    done = view(fleet, thread_id)
    assert (done.state, done.outcome, done.decision) == (
        t.ThreadState.CLOSED,
        "human_decision",
        "4",
    )


def test_bad_input_is_refused_and_nothing_written(fleet: Core) -> None:
    before = fleet.events()
    unknown = fleet.send(t.StartThread(topic="q", participants=[t.Participant(agent="nobody")]))
    assert (unknown.code, unknown.reason) == ("not_found", "unknown agent 'nobody'")
    bad = fleet.send(t.StartThread(topic="q", address="whoosh://:x@p:"))
    assert bad.code == "invalid" and "position 15" in bad.reason
    none = fleet.send(t.StartThread(topic="q", address="whoosh://:architect@*"))
    assert none.code == "not_found" and "no agent matches" in none.reason
    assert fleet.events() == before
    thread_id = start(fleet)
    fleet.send(t.CloseThread(thread_id=thread_id))
    closed = fleet.send(t.PostToThread(thread_id=thread_id, body="hello?"))
    assert closed.code == "bad_state" and "closed" in closed.reason
    with pytest.raises(ValueError, match="answer_type"):
        t.StartThread.model_validate(
            {"topic": "q", "participants": [{"agent": "a1"}], "answer_type": "float"}
        )


def test_participants_by_address(fleet: Core) -> None:
    fleet.register("rev1", specialization="reviewer")
    fleet.register("rev2", capabilities={"reviewer": 0.5})
    thread_id = start(
        fleet, participants=[], address="bzzz://:reviewer@*", kind=t.ThreadKind.REVIEW
    )
    got = view(fleet, thread_id)
    assert [(p.agent, p.role) for p in got.participants] == [
        ("rev1", "reviewer"),
        ("rev2", "reviewer"),
    ]


def test_replay_rebuilds_threads(fleet: Core) -> None:
    thread_id = start(fleet)
    answer(fleet, thread_id, "a1", "no idea")
    answer(fleet, thread_id, "a1", "ANSWER: 4")
    answer(fleet, thread_id, "a2", "ANSWER: 4")
    answer(fleet, thread_id, "a3", "ANSWER: 3")
    rebuilt = FleetProjection()
    Follower(fleet.store, rebuilt).catch_up()
    assert rebuilt.threads.threads == fleet.projection.threads.threads
    reloaded = fleet.store.repository.get(thread_id)
    assert (reloaded.state, reloaded.decision) == ("closed", "4")
    assert all(
        fleet.task(tid).status is TaskStatus.COMPLETED
        for r in view(fleet, thread_id).rounds
        for tid in r.tasks.values()
    )


IDLE_RULE = t.EscalationRule(
    name="idle",
    when={"idle_over_s": 60},
    do=[t.Action(kind="notify", severity="critical"), t.Action(kind="wait_for_human")],
)


def test_time_rules_fire_from_the_sweep_once(fleet: Core) -> None:
    from datetime import timedelta

    from whoosh_coordinator.threads.commands import sweep

    thread_id = start(fleet, escalation=[IDLE_RULE])
    assert sweep(fleet.handler) == 0
    now = fleet.handler.clock()
    fleet.handler.clock = lambda: now + timedelta(seconds=120)
    assert sweep(fleet.handler) == 1
    assert sweep(fleet.handler) == 0  # fired once while the condition holds
    waiting = view(fleet, thread_id)
    assert waiting.state is t.ThreadState.AWAITING_HUMAN and waiting.escalations == ["idle"]
    answer(fleet, thread_id, "a1", "ANSWER: 4")  # a late answer is still recorded
    assert view(fleet, thread_id).state is t.ThreadState.AWAITING_HUMAN


def test_two_coordinators_fire_a_rule_once(store_url: str) -> None:
    from datetime import timedelta

    from coordinator.test_two_writers import handler
    from whoosh_coordinator.threads.commands import sweep

    a, b = handler(store_url), handler(store_url)
    try:
        for name in AGENTS:
            a.handle(c.RegisterAgent(spec=AgentSpec(name=name, command=["cat"])))
        participants = [t.Participant(agent=name) for name in AGENTS]
        reply = a.handle(
            t.StartThread(topic="q", participants=participants, escalation=[IDLE_RULE])
        )
        thread_id = UUID(reply.ids["thread_id"])
        Follower(b.store, b.projection).catch_up()
        assert b.handle(t.PostToThread(thread_id=thread_id, body="a's copy goes stale")).accepted
        Follower(a.store, a.projection).catch_up()
        later = a.clock() + timedelta(seconds=600)
        a.clock = b.clock = lambda: later
        assert sweep(b) == 1
        assert sweep(a) == 0  # a's copy is stale (b posted): the store refuses its firing
        assert sweep(a) == 0  # and, reloaded, a sees the rule has fired already
        types = [e.type for e in read_envelopes(a.store, 0) if e.aggregate_id == thread_id]
        assert types.count("ThreadEscalated") == 1
    finally:
        a.store.close()
        b.store.close()


def test_add_participant_by_address_after_a_split(fleet: Core) -> None:
    fleet.register("archie", specialization="architect")
    rule = t.EscalationRule(
        name="expert",
        when={"rounds_without_decision": 1},
        do=[t.Action(kind="add_participant", address="whoosh://:architect@*")],
    )
    thread_id = start(fleet, escalation=[rule])
    for agent, value in zip(AGENTS, ("3", "4", "5"), strict=True):
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    second = view(fleet, thread_id)
    assert [p.agent for p in second.participants] == [*AGENTS, "archie"]
    assert set(second.rounds[1].tasks) == {*AGENTS, "archie"}
    for agent, value in zip((*AGENTS, "archie"), ("3", "4", "4", "4"), strict=True):
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    assert view(fleet, thread_id).decision == "4"


def test_whoosh_yaml_rules_apply_to_every_thread(fleet: Core) -> None:
    fleet.handler.default_escalation = [IDLE_RULE.model_dump(mode="json")]
    thread_id = start(fleet)
    stored = fleet.store.repository.get(thread_id)
    assert [r["name"] for r in stored.escalation] == ["idle"]


def test_a_review_of_a_completed_tasks_output(fleet: Core) -> None:
    task_id = fleet.submit(prompt="write add()", agent="a1")
    fleet.run_to_end(task_id)  # output "done"
    thread_id = start(fleet, kind=t.ThreadKind.REVIEW, subject_task=task_id)
    prompt = fleet.task(view(fleet, thread_id).rounds[0].tasks["a2"]).prompt
    assert "Subject:\ndone" in prompt and "VERDICT: approve|request_changes|abstain" in prompt
    queued = fleet.submit(prompt="not yet", agent="a1")
    refused = fleet.send(t.StartThread(topic="q", participants=[t.Participant(agent="a1")],
                                       subject_task=queued))  # fmt: skip
    assert refused.code == "bad_state" and "not completed" in refused.reason


def test_reask_with_a_stronger_agent(fleet: Core) -> None:
    fleet.register("big")
    rule = t.EscalationRule(
        name="stronger",
        when={"rounds_without_decision": 1},
        do=[t.Action(kind="reask_with", agent="big")],
    )
    thread_id = start(fleet, escalation=[rule])
    for agent, value in zip(AGENTS, ("3", "4", "5"), strict=True):
        answer(fleet, thread_id, agent, f"ANSWER: {value}")
    second = view(fleet, thread_id).rounds[1]
    assert set(second.tasks) == {"big"}  # only the stronger agent is asked again
    answer(fleet, thread_id, "big", "ANSWER: 4")
    done = view(fleet, thread_id)
    assert (done.outcome, done.decision) == ("consensus", "4")
    assert [p.role for p in done.participants if p.agent == "big"] == ["expert"]


def test_a_thread_with_its_own_budget(fleet: Core) -> None:
    """Each answer reserves its estimate on thread:<id>; what does not fit is refused and
    counts as an abstention naming the budget."""
    from whoosh_coordinator.budgets.rules import estimate_tokens

    thread_id = start(fleet, budget_tokens=1)  # too small for any answer
    first = view(fleet, thread_id)
    prompt = fleet.task(first.rounds[0].tasks["a1"]).prompt
    assert estimate_tokens(prompt, None) > 1
    done = view(fleet, thread_id)
    assert (done.state, done.outcome) == (t.ThreadState.CLOSED, "no_decision")
    assert all("budget 'thread:" in v.reason for v in done.votes), done.votes
    budgets = {b.scope: b for b in fleet.projection.budgets.listed()}
    assert budgets[f"thread:{thread_id}"].reserved_tokens == 0
