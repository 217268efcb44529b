"""The Thread aggregate: a question or review put to participants in rounds.

Plain Python, no I/O. Every fact is an event, so replay rebuilds a thread exactly.
The command layer creates the tasks a round needs and tells the thread which task
asks which participant; the thread records answers as votes, closes the round with a
deterministic tally and says what happens next (decided, another round, a re-ask,
an escalation, or the end). Rules raise `Rejected` before any event is triggered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.commands import RejectCode
from whoosh_shared.contract.threads import AnswerType, Rule, ThreadKind, ThreadState

from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.threads.answers import parse_vote
from whoosh_coordinator.threads.escalation import Facts
from whoosh_coordinator.threads.tally import Ballot, Outcome, decide

OPEN = (ThreadState.DELIBERATING.value, ThreadState.AWAITING_HUMAN.value)


class Thread(Aggregate):
    @event("Started")
    def __init__(
        self,
        topic: str,
        kind: str,
        project: str,
        answer_type: str,
        choices: list[str],
        protocol: dict[str, Any],
        participants: list[dict[str, Any]],
        subject: str | None,
        escalation: list[dict[str, Any]],
        llm: dict[str, Any] | None,
        timeout_s: float,
        actor: str,
        at: datetime,
        origin: dict[str, str] | None = None,  # absent from threads started before it
    ) -> None:
        self.topic = topic
        self.origin = origin  # {"kind": "execution", "id", "step"}: a workflow's review step
        self.kind = kind
        self.project = project
        self.answer_type = answer_type
        self.choices = choices
        self.protocol = protocol
        self.participants = participants
        self.subject = subject
        self.escalation = escalation
        self.llm = llm
        self.timeout_s = timeout_s
        self.actor = actor
        self.state = ThreadState.DELIBERATING.value
        self.round = 0
        self.asked: dict[str, str] = {}  # participant -> task id (str), current round
        self.ballots: dict[str, str | None] = {}  # participant -> value, current round
        self.reasked: list[str] = []
        self.history: list[dict[str, Any]] = []  # closed rounds: outcome and rationales
        self.splits: list[list[float]] = []
        self.undecided_rounds = 0
        self.messages = 0
        self.unparseable = 0
        self.fired: list[str] = []
        self.decision: str | None = None
        self.created_at = at
        self.last_activity = at

    # -- reading ------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.state in OPEN

    def participant(self, agent: str) -> dict[str, Any] | None:
        return next((p for p in self.participants if p["agent"] == agent), None)

    def facts(self, now: datetime, budget_share: float = 0.0) -> Facts:
        return Facts(
            rounds_without_decision=self.undecided_rounds,
            splits=tuple(tuple(s) for s in self.splits),
            messages=self.messages,
            age_s=(now - self.created_at).total_seconds(),
            idle_s=(now - self.last_activity).total_seconds(),
            unparseable=self.unparseable,
            budget_share=budget_share,
        )

    def _check_open(self) -> None:
        if not self.open:
            raise Rejected(RejectCode.BAD_STATE, f"thread {self.id} is {self.state}")

    # -- rounds -------------------------------------------------------------------------

    def open_round(self, tasks: dict[str, UUID]) -> None:
        self._check_open()
        if self.asked and set(self.ballots) != set(self.asked):
            raise Rejected(RejectCode.BAD_STATE, f"thread {self.id}: round {self.round} is open")
        self._round_opened(round=self.round + 1, tasks={k: str(v) for k, v in tasks.items()})

    @event("RoundOpened")
    def _round_opened(self, round: int, tasks: dict[str, str]) -> None:
        self.state = ThreadState.DELIBERATING.value
        self.round = round
        self.asked = dict(tasks)
        self.ballots = {}
        self.reasked = []

    def pending_tasks(self) -> list[str]:
        """Tasks of the current round whose answers have not come in (ids)."""
        return [task for agent, task in self.asked.items() if agent not in self.ballots]

    def waits_for(self, task_id: UUID) -> str | None:
        """The participant a task of the current round asks, if the thread still waits."""
        for agent, asked in self.asked.items():
            if asked == str(task_id) and agent not in self.ballots:
                return agent
        return None

    def record_answer(self, agent: str, output: str, now: datetime) -> bool:
        """A participant's task completed: its message, then its vote or an unparseable
        mark. Returns True when the participant should be asked again (once)."""
        self._post(author=agent, author_kind="agent", round=self.round, body=output, at=now)
        parsed = parse_vote(
            output, ThreadKind(self.kind), AnswerType(self.answer_type), self.choices
        )
        if parsed.ok:
            self._vote_cast(round=self.round, voter=agent, value=parsed.value, reason="")
            return False
        reask = self.reasked.count(agent) < int(self.protocol.get("reask_unparseable", 1))
        self._vote_unparseable(round=self.round, voter=agent, reason=parsed.error, reask=reask)
        return reask

    def record_failure(self, agent: str, reason: str, now: datetime) -> None:
        """A participant's task ended without an answer: an abstention with the reason."""
        self._post(
            author="whoosh",
            author_kind="system",
            round=self.round,
            body=f"{agent}: no answer ({reason})",
            at=now,
        )
        self._vote_cast(round=self.round, voter=agent, value=None, reason=reason)

    def reask(self, agent: str, task_id: UUID) -> None:
        self._reasked(round=self.round, participant=agent, task=str(task_id))

    @event("Reasked")
    def _reasked(self, round: int, participant: str, task: str) -> None:
        self.asked[participant] = task
        self.reasked.append(participant)

    @event("MessagePosted")
    def _post(
        self, author: str, author_kind: str, round: int | None, body: str, at: datetime
    ) -> None:
        self.messages += 1
        self.last_activity = at

    @event("VoteCast")
    def _vote_cast(self, round: int, voter: str, value: str | None, reason: str) -> None:
        self.ballots[voter] = value

    @event("VoteUnparseable")
    def _vote_unparseable(self, round: int, voter: str, reason: str | None, reask: bool) -> None:
        self.unparseable += 1
        if not reask:  # after the re-ask: an abstention with the reason
            self.ballots[voter] = None

    @property
    def round_complete(self) -> bool:
        return bool(self.asked) and set(self.ballots) >= set(self.asked)

    def close_round(self) -> Outcome:
        """Tally the current round (every asked participant has voted or abstained)."""
        ballots = [
            Ballot(
                voter=agent,
                value=self.ballots.get(agent),
                weight=float(p["weight"]),
                veto=bool(p.get("veto")),
            )
            for agent in sorted(self.asked)
            if (p := self.participant(agent)) is not None
        ]
        outcome = decide(
            ballots, Rule(self.protocol.get("rule", "majority")), self.protocol.get("quorum")
        )
        self._round_closed(
            round=self.round,
            result=outcome.result,
            decision=outcome.decision,
            tally=outcome.tally,
            cast=outcome.cast,
            share=outcome.share,
        )
        return outcome

    @event("RoundClosed")
    def _round_closed(
        self,
        round: int,
        result: str,
        decision: str | None,
        tally: dict[str, float],
        cast: float,
        share: float,
    ) -> None:
        self.history.append(
            {"round": round, "result": result, "tally": tally, "ballots": dict(self.ballots)}
        )
        if result in ("decided", "vetoed"):
            self.state = ThreadState.DECIDED.value
            self.decision = decision
        else:
            self.undecided_rounds += 1
            self.splits.append(sorted(tally.values(), reverse=True))
        self.asked = {}

    # -- escalation and people --------------------------------------------------------

    def due_rules(self, holds: Any) -> list[dict[str, Any]]:
        """Rules not yet fired whose condition `holds(rule)` says is true now."""
        return [r for r in self.escalation if r["name"] not in self.fired and holds(r)]

    def escalate(self, rule: dict[str, Any], now: datetime) -> None:
        """Record that a rule fired (once per thread: the version check keeps two
        coordinators from both recording it)."""
        self._check_open()
        if rule["name"] in self.fired:
            raise Rejected(RejectCode.BAD_STATE, f"rule {rule['name']} already fired")
        self._escalated(rule=rule["name"], actions=rule["do"], at=now)

    @event("Escalated")
    def _escalated(self, rule: str, actions: list[dict[str, Any]], at: datetime) -> None:
        self.fired.append(rule)
        if any(a["kind"] == "wait_for_human" for a in actions):
            self.state = ThreadState.AWAITING_HUMAN.value

    def model_for(self, agent: str) -> str | None:
        """The model a participant is asked with: one an escalation chose, else its own."""
        return getattr(self, "models", {}).get(agent)

    def use_models(self, models: dict[str, str], reason: str) -> None:
        self._check_open()
        if models:
            self._models_changed(models=models, reason=reason)

    @event("ModelsChanged")
    def _models_changed(self, models: dict[str, str], reason: str) -> None:
        self.models = {**getattr(self, "models", {}), **models}

    def add_participant(self, participant: dict[str, Any], reason: str) -> None:
        self._check_open()
        if self.participant(participant["agent"]) is not None:
            return
        self._participant_added(participant=participant, reason=reason)

    @event("ParticipantAdded")
    def _participant_added(self, participant: dict[str, Any], reason: str) -> None:
        self.participants = [*self.participants, participant]

    def post(self, author: str, body: str, now: datetime) -> None:
        self._check_open()
        self._post(author=author, author_kind="human", round=self.round or None, body=body, at=now)

    def decide_by_human(self, decision: str, reason: str, actor: str, now: datetime) -> None:
        if self.state == ThreadState.CLOSED.value:
            raise Rejected(RejectCode.BAD_STATE, f"thread {self.id} is closed")
        self._human_decided(decision=decision, reason=reason, actor=actor, at=now)
        self.close("human_decision", reason or "decided by a human", actor)

    @event("HumanDecided")
    def _human_decided(self, decision: str, reason: str, actor: str, at: datetime) -> None:
        self.decision = decision
        self.last_activity = at

    def close(self, outcome: str, reason: str, actor: str) -> None:
        if self.state == ThreadState.CLOSED.value:
            raise Rejected(RejectCode.BAD_STATE, f"thread {self.id} is already closed")
        # Not an event: read by the same decision, which cancels them (stop_leftovers).
        self.leftovers = self.pending_tasks()
        self._closed(outcome=outcome, decision=self.decision, reason=reason, actor=actor)

    @event("Closed")
    def _closed(self, outcome: str, decision: str | None, reason: str, actor: str) -> None:
        self.state = ThreadState.CLOSED.value
        self.outcome = outcome
        self.asked = {}
