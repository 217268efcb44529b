"""Escalation conditions: any / all / not trees over facts about a thread, evaluated purely.

The facts come from the thread's own events (and `now`, injected), so the same tree
gives the same answer live and on replay. Firing once per rule per thread is the Thread
aggregate's job (it records which rules fired), not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Facts:
    rounds_without_decision: int = 0
    splits: tuple[tuple[float, ...], ...] = field(default_factory=tuple)  # closed rounds, in order
    messages: int = 0
    age_s: float = 0.0
    idle_s: float = 0.0
    unparseable: int = 0
    budget_share: float = 0.0


def evaluate(node: dict[str, Any], facts: Facts) -> bool:
    """Whether a (validated, see whoosh_shared.contract.threads.check_condition) condition holds."""
    ((key, value),) = node.items()
    if key == "any":
        return any(evaluate(child, facts) for child in value)
    if key == "all":
        return all(evaluate(child, facts) for child in value)
    if key == "not":
        return not evaluate(value, facts)
    return LEAVES[key](facts, value)


def _same_split(facts: Facts, k: float) -> bool:
    """The last k closed rounds split the same way (k >= 1; 1 = any undecided split)."""
    k = int(k)
    if k < 1 or len(facts.splits) < k:
        return False
    last = facts.splits[-k:]
    return all(split == last[0] for split in last) and len(last[0]) > 1


LEAVES = {
    "rounds_without_decision": lambda f, n: f.rounds_without_decision >= n,
    "same_split": _same_split,
    "messages_over": lambda f, n: f.messages > n,
    "age_over_s": lambda f, t: f.age_s > t,
    "idle_over_s": lambda f, t: f.idle_s > t,
    "unparseable_over": lambda f, n: f.unparseable > n,
    "budget_share_over": lambda f, s: f.budget_share > s,
}
