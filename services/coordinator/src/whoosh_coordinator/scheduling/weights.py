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

The credits are in-memory state of one coordinator (they rebuild within a few picks
after a restart; several coordinators each keep their own, which keeps the split
proportional overall).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

DEFAULT_WEIGHT = 100


class WeightedRotation:
    """Smooth weighted round-robin credits per agent."""

    def __init__(self) -> None:
        self._credit: dict[UUID, int] = {}

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
        return best

    def peek(self, candidates: Sequence[tuple[UUID, int]]) -> UUID:
        """What `pick` would answer, without taking the turn (for explanations)."""
        saved = dict(self._credit)
        try:
            return self.pick(candidates)
        finally:
            self._credit = saved

    def forget(self, agent_id: UUID) -> None:
        self._credit.pop(agent_id, None)


def weights_differ(weights: Sequence[int]) -> bool:
    """Whether weights have anything to split: equal weights (the default: all 100) leave
    the choice to the estimates (the fastest finish wins), as before weights existed."""
    return len(set(weights)) > 1
