"""Traffic weights: how new work is split between agents that could all take it.

An agent's `weight` (0..100, default 100) is the share of new work it gets among the
eligible agents that have a free slot. It exists for rollouts: give a new model or server
5 %, then 25 %, then all; or 0 to drain it (no new work; what runs finishes; it stays
probed and healthy). Weight 0 is applied by the eligibility rules (scheduler.py); this
module splits work between agents whose weights differ.

The split is smooth weighted round-robin (the rule nginx uses for upstream weights):
deterministic, so over any run of N picks among the same agents each gets its weight's
share to within one pick, and spread out rather than in bursts (weights 3:1 give
A A B A, not A A A B). Random choice by weight would drift by several percentage points
over a thousand tasks. The rotation is work-conserving by construction: it only ever
chooses among agents with a free slot, so a weight never leaves work queued while an
eligible agent is free; an agent whose turn comes while it is full simply does not
collect credit until it has a slot again.

The credits are derived from events, not kept by whichever coordinator picked: a
placement the weights decided records the agents they chose among, with their weights
(`TaskAssigned.weighted_among`), and the projection folds that turn (`fold`). Every
coordinator on the store, a restarted one, and a replay therefore hold the same credits,
and `explain` on any of them names the same next pick. A scheduling pass picks on a copy
(`copy`), so a decision that is refused or loses a race to another coordinator spends no
turn; two coordinators that pick from the same credits at once both record their turn,
and the fold's arithmetic (the picked agent pays the total) evens that out on the next
picks. (Credits kept in each coordinator's memory, as before, lost a turn whenever a
placement was refused or lost a race, and each coordinator explained its own next pick.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

DEFAULT_WEIGHT = 100


class WeightedRotation:
    """Smooth weighted round-robin credits per agent."""

    def __init__(self, credits: Mapping[UUID, int] | None = None) -> None:
        self._credit: dict[UUID, int] = dict(credits or {})
        self._turn: dict[str, int] | None = None

    def copy(self) -> WeightedRotation:
        """The same credits, to pick on without changing these (a scheduling pass)."""
        return WeightedRotation(self._credit)

    def take_turn(self) -> dict[str, int] | None:
        """What the last `pick` chose among (agent id -> weight), once; None if nothing was
        picked since: the scheduler records it on the placement's TaskAssigned event."""
        turn, self._turn = self._turn, None
        return turn

    def fold(self, weighted_among: Mapping[str, int], picked: UUID) -> None:
        """Apply a recorded turn: every candidate earns its weight, the picked one pays
        the total (the same arithmetic as `pick`, with the choice already made)."""
        for agent_id, weight in weighted_among.items():
            key = UUID(agent_id)
            self._credit[key] = self._credit.get(key, 0) + weight
        self._credit[picked] = self._credit.get(picked, 0) - sum(weighted_among.values())

    @property
    def credits(self) -> dict[UUID, int]:
        return dict(self._credit)

    def pick(self, candidates: Sequence[tuple[UUID, int]]) -> UUID:
        """One of `candidates` (agent id, weight > 0), in order of preference: every
        candidate earns its weight, the richest wins and pays the total. A tie goes to the
        earlier candidate (the scheduler lists them best estimate first)."""
        total = sum(weight for _, weight in candidates)
        best: UUID | None = None
        for agent_id, weight in candidates:
            credit = self._credit.get(agent_id, 0) + weight
            self._credit[agent_id] = credit
            if best is None or credit > self._credit[best]:
                best = agent_id
        if best is None:
            raise ValueError("no candidate to pick from")
        self._credit[best] -= total
        self._turn = {str(agent_id): weight for agent_id, weight in candidates}
        return best

    def peek(self, candidates: Sequence[tuple[UUID, int]]) -> UUID:
        """What `pick` would answer, without taking the turn (for explanations)."""
        saved, turn = dict(self._credit), self._turn
        try:
            return self.pick(candidates)
        finally:
            self._credit, self._turn = saved, turn

    def forget(self, agent_id: UUID) -> None:
        self._credit.pop(agent_id, None)


def weights_differ(weights: Sequence[int]) -> bool:
    """Whether weights have anything to split: equal weights (the default: all 100) leave
    the choice to the estimates (the fastest finish wins), as before weights existed."""
    return len(set(weights)) > 1
