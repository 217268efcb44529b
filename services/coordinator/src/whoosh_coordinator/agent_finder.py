"""The answer to FindAgents: the scheduler's explanation (explain.py) for needs without a
task, so "which agents could run this?" is answered by the scheduler's own rules."""

from __future__ import annotations

from collections.abc import Iterable

from whoosh_shared.agent_fit import FindAgents
from whoosh_shared.explain import Explanation
from whoosh_shared.queries import AgentView

from whoosh_coordinator.estimates import prompt_tokens
from whoosh_coordinator.explain import explain
from whoosh_coordinator.scheduler import Needs
from whoosh_coordinator.weights import WeightedRotation


def needs_of(query: FindAgents) -> Needs:
    return Needs(
        agent=query.agent,
        agent_type=query.agent_type.value if query.agent_type else None,
        model=query.model,
        capabilities=tuple(query.capabilities),
        prompt_tokens=prompt_tokens(query.prompt, None),
    )


def find_agents(
    query: FindAgents, agents: Iterable[AgentView], rotation: WeightedRotation | None = None
) -> Explanation:
    """`rotation`: the weights' credits folded from events (the projection's), so a
    weighted choice is named as the scheduler would make it next."""
    return explain(needs_of(query), agents, rotation=rotation or WeightedRotation())
