"""The answer to FindAgents: the scheduler's explanation (explain.py) for needs without a
task, so "which agents could run this?" is answered by the scheduler's own rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from whoosh_shared.contract.agent_fit import FindAgents
from whoosh_shared.contract.explain import Explanation
from whoosh_shared.contract.queries import AgentView

from whoosh_coordinator.scheduling.estimates import prompt_tokens
from whoosh_coordinator.scheduling.explain import explain
from whoosh_coordinator.scheduling.scheduler import Needs
from whoosh_coordinator.scheduling.weights import WeightedRotation


def needs_of(query: FindAgents) -> Needs:
    return Needs(
        agent=query.agent,
        agent_type=query.agent_type.value if query.agent_type else None,
        model=query.model,
        capabilities=tuple(query.capabilities),
        prompt_tokens=prompt_tokens(query.prompt, None),
    )


def find_agents(
    query: FindAgents,
    agents: Iterable[AgentView],
    rotation: WeightedRotation | None = None,
    now: datetime | None = None,
) -> Explanation:
    """`rotation`: the weights' credits folded from events (the projection's), so a
    weighted choice is named as the scheduler would make it next; `now`: the clock that
    says which models are still loaded."""
    return explain(needs_of(query), agents, rotation=rotation or WeightedRotation(), now=now)
