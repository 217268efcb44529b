"""Deciding a round from its votes: a pure function, the same answer on every replay.

Weights add up per value; abstentions count for the quorum's total but not as cast
weight. Ties, a missing quorum and a veto holder's rejection give no decision, never a
random pick: the next round, an escalation or a human handles them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from whoosh_shared.contract.threads import Rule, Verdict

THRESHOLDS = {
    Rule.MAJORITY: (Fraction(1, 2), False),  # strictly more than half
    Rule.SUPERMAJORITY: (Fraction(2, 3), True),  # at least two thirds
    Rule.UNANIMOUS: (Fraction(1), True),
}


@dataclass(frozen=True)
class Ballot:
    voter: str
    value: str | None  # None: abstained (or unparseable after the re-ask)
    weight: float = 1.0
    veto: bool = False


@dataclass(frozen=True)
class Outcome:
    result: str  # decided | tie | no_quorum | vetoed | split
    decision: str | None = None
    tally: dict[str, float] = field(default_factory=dict)
    cast: float = 0.0
    share: float = 0.0

    @property
    def decided(self) -> bool:
        """A veto decides too: the review's answer is request_changes, whatever the rest."""
        return self.result in ("decided", "vetoed")


def decide(ballots: list[Ballot], rule: Rule, quorum: float | None = None) -> Outcome:
    """`quorum`: minimum cast weight (None: at least half of all the ballots' weight)."""
    tally: dict[str, Fraction] = {}
    for ballot in ballots:
        if ballot.value is not None:
            tally[ballot.value] = tally.get(ballot.value, Fraction(0)) + _w(ballot.weight)
    shown = {value: float(weight) for value, weight in sorted(tally.items())}
    cast = sum(tally.values(), Fraction(0))
    total = sum((_w(b.weight) for b in ballots), Fraction(0))
    needed = _w(quorum) if quorum is not None else total / 2
    if any(b.veto and b.value == Verdict.REQUEST_CHANGES.value for b in ballots):
        return Outcome("vetoed", Verdict.REQUEST_CHANGES.value, shown, float(cast))
    if cast == 0 or cast < needed:
        return Outcome("no_quorum", tally=shown, cast=float(cast))
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    leader, top = ranked[0]
    share = top / cast
    if len(ranked) > 1 and ranked[1][1] == top:
        return Outcome("tie", tally=shown, cast=float(cast), share=float(share))
    if rule is not Rule.PLURALITY:
        threshold, inclusive = THRESHOLDS[rule]
        if share < threshold or (share == threshold and not inclusive):
            return Outcome("split", tally=shown, cast=float(cast), share=float(share))
    return Outcome("decided", leader, shown, float(cast), float(share))


def _w(weight: float) -> Fraction:
    """Exact arithmetic: 0.1 + 0.2 of weight must tie with 0.3, as a person expects."""
    return Fraction(str(weight))


def split_signature(outcome: Outcome) -> tuple[float, ...]:
    """The shape of a round's split (sorted weights, not who held which value), so that
    'stuck at 2-1' is seen even when agents trade positions."""
    return tuple(sorted(outcome.tally.values(), reverse=True))
