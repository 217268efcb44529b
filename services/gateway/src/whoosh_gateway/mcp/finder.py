"""whoosh_find_agents: the coordinator's dry run of the scheduler, shaped for a model:
eligible agents best first (the scheduler's pick, then free agents by estimate, warmth and
load, then busy ones), the others with the rule that excludes them."""

from __future__ import annotations

from whoosh_shared.contract.agent_fit import FindAgents
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.explain import AgentConsidered, Explanation

from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.mcp.models import Candidate, FindAgentsResult


def _order(agent: AgentConsidered) -> tuple[object, ...]:
    return (
        not agent.chosen,
        not agent.free,
        agent.estimate_s if agent.estimate_s is not None else 0.0,
        agent.warm is False,
        agent.load / agent.capacity,
        agent.agent,
    )


def _candidate(agent: AgentConsidered, rank: int | None) -> Candidate:
    return Candidate(
        name=agent.agent,
        rank=rank,
        eligible=agent.eligible,
        free_slots=max(0, agent.capacity - agent.load) if agent.eligible else 0,
        reason=agent.reason,
        weight=agent.weight,
        estimate_s=agent.estimate_s,
        warm=agent.warm,
    )


async def find_agents(
    coordinator: CoordinatorClient,
    capabilities: list[str],
    agent_type: AgentType | None,
    model: str | None,
    agent: str | None,
    prompt: str,
) -> FindAgentsResult:
    query = FindAgents(
        capabilities=capabilities, agent_type=agent_type, model=model, agent=agent, prompt=prompt
    )
    explained = await coordinator.ask(query, Explanation)
    eligible = sorted((a for a in explained.agents if a.eligible), key=_order)
    return FindAgentsResult(
        eligible=[_candidate(a, rank) for rank, a in enumerate(eligible, start=1)],
        not_eligible=[_candidate(a, None) for a in explained.agents if not a.eligible],
        chosen=explained.chosen,
        summary=explained.decision,
    )
