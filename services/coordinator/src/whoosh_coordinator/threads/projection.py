"""ThreadView per thread, folded from thread events (live and on replay alike)."""

from __future__ import annotations

from uuid import UUID

from whoosh_shared.contract import collab_events as ce
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.threads import (
    Message,
    Participant,
    Protocol,
    RoundView,
    ThreadState,
    ThreadView,
    VoteView,
)

MESSAGES_KEPT = 500  # per thread in the view; the store has them all


class ThreadProjection:
    def __init__(self) -> None:
        self.threads: dict[UUID, ThreadView] = {}

    def apply(self, envelope: EventEnvelope, payload: object) -> None:
        at = envelope.timestamp
        if isinstance(payload, ce.ThreadStarted):
            self.threads[envelope.aggregate_id] = ThreadView(
                id=envelope.aggregate_id,
                topic=payload.topic,
                kind=payload.kind,  # type: ignore[arg-type]
                project=payload.project,
                answer_type=payload.answer_type,  # type: ignore[arg-type]
                choices=payload.choices,
                protocol=Protocol.model_validate(payload.protocol),
                participants=[Participant.model_validate(p) for p in payload.participants],
                state=ThreadState.DELIBERATING,
                created_at=at,
                updated_at=at,
                actor=payload.actor,
            )
            return
        view = self.threads.get(envelope.aggregate_id)
        if view is None:
            return
        view.updated_at = at
        self._fold(view, payload)

    def _fold(self, view: ThreadView, payload: object) -> None:
        match payload:
            case ce.ThreadRoundOpened(round=number, tasks=tasks):
                view.rounds.append(
                    RoundView(number=number, tasks={k: UUID(v) for k, v in tasks.items()})
                )
                view.state = ThreadState.DELIBERATING
            case ce.ThreadReasked(participant=agent, task=task):
                if view.rounds:
                    view.rounds[-1].tasks[agent] = UUID(task)
            case ce.ThreadMessagePosted():
                view.messages.append(
                    Message(
                        author=payload.author,
                        author_kind=payload.author_kind,  # type: ignore[arg-type]
                        round=payload.round,
                        body=payload.body,
                        at=payload.at,
                    )
                )
                del view.messages[:-MESSAGES_KEPT]
            case ce.ThreadVoteCast(round=number, voter=voter, value=value, reason=reason):
                weight = next((p.weight for p in view.participants if p.agent == voter), 1.0)
                view.votes.append(
                    VoteView(round=number, voter=voter, value=value, weight=weight, reason=reason)
                )
            case ce.ThreadVoteUnparseable(round=number, voter=voter, reason=reason, reask=reask):
                if not reask:
                    view.votes.append(
                        VoteView(
                            round=number,
                            voter=voter,
                            value=None,
                            weight=0.0,
                            reason=f"unparseable: {reason}",
                        )
                    )
            case ce.ThreadRoundClosed(result=result, tally=tally, decision=decision):
                if view.rounds:
                    view.rounds[-1].outcome, view.rounds[-1].tally = result, tally
                if result in ("decided", "vetoed"):
                    view.state, view.decision = ThreadState.DECIDED, decision
            case ce.ThreadEscalated(rule=rule, actions=actions):
                view.escalations.append(rule)
                if any(a.get("kind") == "wait_for_human" for a in actions):
                    view.state = ThreadState.AWAITING_HUMAN
            case ce.ThreadParticipantAdded(participant=participant):
                view.participants.append(Participant.model_validate(participant))
            case ce.ThreadHumanDecided(decision=decision):
                view.decision = decision
            case ce.ThreadClosed(outcome=outcome, decision=decision):
                view.state, view.outcome, view.decision = ThreadState.CLOSED, outcome, decision

    def listed(self, state: ThreadState | None, limit: int) -> list[ThreadView]:
        views = sorted(self.threads.values(), key=lambda v: v.created_at, reverse=True)
        return [v for v in views if state is None or v.state is state][:limit]
