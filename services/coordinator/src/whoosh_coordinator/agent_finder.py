"""The answer to FindAgents: the scheduler's rules applied to needs without a task.

Uses the scheduler's own `why_not` (the one place the eligibility rules live) and its
preference ranking, so the dry run says what a placement would do now. Pure: views in,
fits out. With differing traffic weights the scheduler shares work among the best
agents in proportion to their weights; the rank here is the preference order it starts
from.
"""

from __future__ import annotations

from collections.abc import Iterable

from whoosh_shared.agent_fit import AgentFit, AgentFits, FindAgents
from whoosh_shared.queries import AgentView

from whoosh_coordinator import scheduler as s
from whoosh_coordinator.estimates import prompt_tokens


def needs_of(query: FindAgents) -> s.Needs:
    return s.Needs(
        agent=query.agent,
        agent_type=query.agent_type.value if query.agent_type else None,
        model=query.model,
        capabilities=tuple(query.capabilities),
        prompt_tokens=prompt_tokens(query.prompt, None),
    )


def find_agents(query: FindAgents, agents: Iterable[AgentView]) -> AgentFits:
    needs = needs_of(query)
    refused, candidates = [], []
    for agent in sorted(agents, key=lambda a: a.spec.name):
        reason = s.why_not(needs, agent)
        if reason is None:
            candidates.append(agent)
        else:
            refused.append(
                AgentFit(name=agent.spec.name, eligible=False, free_slots=0, reason=reason)
            )
    load = {agent.id: agent.load for agent in candidates}
    ranked = sorted(
        s.rank(needs, candidates, load),
        key=lambda pair: (pair[1].load >= pair[1].spec.max_concurrent, pair[0], pair[1].spec.name),
    )
    eligible = [
        AgentFit(
            name=agent.spec.name,
            eligible=True,
            rank=position,
            free_slots=max(0, agent.spec.max_concurrent - agent.load),
        )
        for position, (_, agent) in enumerate(ranked, start=1)
    ]
    return AgentFits(agents=eligible + refused)
