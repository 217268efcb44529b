"""Event payloads of threads and budgets, registered in events.EVENT_TYPES.

Kept in their own module (the contract grows by new modules, not by one long file);
the field names are exactly those the coordinator's Thread and Budget aggregates record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from whoosh_shared.contract.agents import Strict


class ThreadEvent(Strict):
    """Base of thread event payloads."""


class ThreadStarted(ThreadEvent):
    topic: str
    kind: str
    project: str
    answer_type: str
    choices: list[str]
    protocol: dict[str, Any]
    participants: list[dict[str, Any]]
    subject: str | None = None
    escalation: list[dict[str, Any]]
    llm: dict[str, Any] | None = None
    timeout_s: float
    actor: str
    at: datetime
    origin: dict[str, str] | None = None  # a workflow's review step: kind, id, step


class ThreadRoundOpened(ThreadEvent):
    round: int
    tasks: dict[str, str]


class ThreadReasked(ThreadEvent):
    round: int
    participant: str
    task: str


class ThreadMessagePosted(ThreadEvent):
    author: str
    author_kind: str
    round: int | None = None
    body: str
    at: datetime


class ThreadModelsChanged(ThreadEvent):
    """Participants asked from now on with another model (a `reask_with` model)."""

    models: dict[str, str]
    reason: str


class ThreadVoteCast(ThreadEvent):
    round: int
    voter: str
    value: str | None = None
    reason: str = ""


class ThreadVoteUnparseable(ThreadEvent):
    round: int
    voter: str
    reason: str | None = None
    reask: bool


class ThreadRoundClosed(ThreadEvent):
    round: int
    result: str
    decision: str | None = None
    tally: dict[str, float]
    cast: float
    share: float


class ThreadEscalated(ThreadEvent):
    rule: str
    actions: list[dict[str, Any]]
    at: datetime


class ThreadParticipantAdded(ThreadEvent):
    participant: dict[str, Any]
    reason: str


class ThreadHumanDecided(ThreadEvent):
    decision: str
    reason: str
    actor: str
    at: datetime


class ThreadClosed(ThreadEvent):
    outcome: str
    decision: str | None = None
    reason: str
    actor: str


class BudgetCreated(Strict):
    scope: str


class BudgetSet(Strict):
    tokens: int | None = None
    usd: float | None = None
    period: str
    warn_at: float
    on_exhausted: str
    actor: str


class BudgetReserved(Strict):
    task: str
    tokens: int
    usd: float


class BudgetCharged(Strict):
    task: str
    tokens: int
    usd: float


class BudgetWarned(Strict):
    share: float


class BudgetExhausted(Strict):
    share: float


class BudgetPeriodReset(Strict):
    period_start: datetime


class BudgetStopped(Strict):
    """An exhausted budget with `on_exhausted: stop` ended the tasks it still held; each
    one's TaskCancelled (same transaction) carries the same reason."""

    tasks: list[str]
    reason: str


COLLAB_EVENTS: tuple[type[Strict], ...] = (
    ThreadStarted,
    ThreadRoundOpened,
    ThreadReasked,
    ThreadMessagePosted,
    ThreadVoteCast,
    ThreadModelsChanged,
    ThreadVoteUnparseable,
    ThreadRoundClosed,
    ThreadEscalated,
    ThreadParticipantAdded,
    ThreadHumanDecided,
    ThreadClosed,
    BudgetCreated,
    BudgetSet,
    BudgetReserved,
    BudgetCharged,
    BudgetWarned,
    BudgetExhausted,
    BudgetPeriodReset,
    BudgetStopped,
)
