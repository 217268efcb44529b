"""The contract of agent threads: questions and reviews answered by votes.

A thread asks its participants (agents with a role, a weight, maybe a veto) in rounds;
each participant's answer is one ordinary task whose output must end in one strict line
(`ANSWER: <value>` or `VERDICT: approve|request_changes|abstain`). The coordinator
tallies the votes deterministically (see whoosh_coordinator.threads) and records a
decision, escalates per the rules here, or waits for a human.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentName, Strict
from whoosh_shared.contract.commands import Command, LlmOptions
from whoosh_shared.contract.escalation_rules import (
    ACTIONS as ACTIONS,  # re-exported: the thread contract
)
from whoosh_shared.contract.escalation_rules import LEAVES as LEAVES
from whoosh_shared.contract.escalation_rules import Action as Action
from whoosh_shared.contract.escalation_rules import EscalationRule as EscalationRule
from whoosh_shared.contract.escalation_rules import check_condition as check_condition
from whoosh_shared.contract.queries import Query

MAX_BODY = 32_000


class ThreadKind(StrEnum):
    QUESTION = "question"
    REVIEW = "review"


class AnswerType(StrEnum):
    INT = "int"
    DECIMAL = "decimal"
    CHOICE = "choice"
    TEXT = "text"


class Rule(StrEnum):
    """Share of the cast weight the leading value needs: plurality = more than any other,
    majority > 1/2, supermajority >= 2/3, unanimous = all of it."""

    PLURALITY = "plurality"
    MAJORITY = "majority"
    SUPERMAJORITY = "supermajority"
    UNANIMOUS = "unanimous"


class Verdict(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    ABSTAIN = "abstain"


class ThreadState(StrEnum):
    DELIBERATING = "deliberating"
    AWAITING_HUMAN = "awaiting_human"
    DECIDED = "decided"
    CLOSED = "closed"


class Participant(Strict):
    agent: AgentName
    role: str = Field(default="participant", min_length=1, max_length=64)
    weight: float = Field(default=1.0, gt=0, le=1000)
    veto: bool = Field(default=False, description="review: its request_changes blocks approve")


class Protocol(Strict):
    rule: Rule = Rule.MAJORITY
    quorum: float | None = Field(
        default=None, ge=0, description="minimum cast (non-abstaining) weight; None: half of all"
    )
    max_rounds: int = Field(default=1, ge=1, le=10, description="1 = independent vote")
    reask_unparseable: int = Field(default=1, ge=0, le=3)


class StartThread(Command):
    SUBJECT: ClassVar[str] = subjects.command("thread.start")
    topic: str = Field(min_length=1, max_length=2000)
    kind: ThreadKind = ThreadKind.QUESTION
    participants: list[Participant] = Field(default_factory=list, max_length=50)
    address: str | None = Field(default=None, max_length=300, description="instead of a list")
    role: str = Field(default="participant", min_length=1, max_length=64)
    answer_type: AnswerType = AnswerType.TEXT
    choices: list[str] = Field(default_factory=list, max_length=50)
    protocol: Protocol = Field(default_factory=Protocol)
    subject: str | None = Field(default=None, max_length=MAX_BODY)
    subject_task: UUID | None = None
    project: str = Field(default="default", min_length=1, max_length=64)
    escalation: list[EscalationRule] = Field(default_factory=list, max_length=20)
    llm: LlmOptions | None = None
    timeout_s: float = Field(default=600.0, gt=0, le=7 * 24 * 3600)
    budget_tokens: int | None = Field(
        default=None, ge=0, description="a budget for this thread's tasks (scope thread:<id>)"
    )
    budget_usd: float | None = Field(default=None, ge=0)
    budget_on_exhausted: Literal["refuse", "stop"] = Field(
        default="refuse",
        description="stop: the answers still running are cancelled once it is used up",
    )

    @model_validator(mode="after")
    def _consistent(self) -> StartThread:
        if not self.participants and not self.address:
            raise ValueError("name the participants or give an address to find them")
        if self.answer_type is AnswerType.CHOICE and not self.choices:
            raise ValueError("answer_type 'choice' needs 'choices'")
        names = [p.agent for p in self.participants]
        if len(set(names)) != len(names):
            raise ValueError("a participant is listed twice")
        return self


class PostToThread(Command):
    SUBJECT: ClassVar[str] = subjects.command("thread.post")
    thread_id: UUID
    body: str = Field(min_length=1, max_length=MAX_BODY)


class DecideThread(Command):
    """A human's decision (operator role or above): closes the thread with it."""

    SUBJECT: ClassVar[str] = subjects.command("thread.decide")
    thread_id: UUID
    decision: str = Field(min_length=1, max_length=2000)
    reason: str = Field(default="", max_length=2000)


class CloseThread(Command):
    SUBJECT: ClassVar[str] = subjects.command("thread.close")
    thread_id: UUID
    reason: str = Field(default="closed by user", max_length=2000)


class Message(Strict):
    author: str
    author_kind: Literal["agent", "human", "system"]
    round: int | None = None
    body: str
    at: datetime


class VoteView(Strict):
    round: int
    voter: str
    value: str | None = Field(description="normalised value; None for an abstention")
    weight: float
    reason: str = ""


class RoundView(Strict):
    number: int
    tasks: dict[str, UUID] = Field(default_factory=dict, description="participant -> task")
    outcome: str | None = None
    tally: dict[str, float] = Field(default_factory=dict)


class ThreadView(Strict):
    id: UUID
    topic: str
    kind: ThreadKind
    project: str
    answer_type: AnswerType
    choices: list[str] = Field(default_factory=list)
    protocol: Protocol
    participants: list[Participant]
    state: ThreadState
    rounds: list[RoundView] = Field(default_factory=list)
    votes: list[VoteView] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    escalations: list[str] = Field(default_factory=list, description="rules that fired")
    decision: str | None = None
    outcome: str | None = None
    created_at: datetime
    updated_at: datetime
    actor: str = "system"


class GetThread(Query):
    SUBJECT: ClassVar[str] = subjects.query("thread.get")
    thread_id: UUID


class ListThreads(Query):
    SUBJECT: ClassVar[str] = subjects.query("thread.list")
    state: ThreadState | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class ThreadList(Strict):
    threads: list[ThreadView]


class ResolveAddress(Query):
    SUBJECT: ClassVar[str] = subjects.query("address.resolve")
    address: str = Field(min_length=1, max_length=300)


class Resolved(Strict):
    address: str
    agents: list[str]
