"""whoosh_find_agents: the coordinator's dry run of the scheduler, shaped for a model."""

from __future__ import annotations

from whoosh_shared.agent_fit import AgentFits, FindAgents
from whoosh_shared.enums import AgentType

from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.mcp.models import Candidate, FindAgentsResult


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
    fits = await coordinator.ask(query, AgentFits)
    eligible = [Candidate(**fit.model_dump()) for fit in fits.agents if fit.eligible]
    others = [Candidate(**fit.model_dump()) for fit in fits.agents if not fit.eligible]
    free = [c for c in eligible if c.free_slots > 0]
    if free:
        summary = f"{len(eligible)} eligible; it would run on '{free[0].name}' now"
    elif eligible:
        summary = f"{len(eligible)} eligible, all busy: it would queue for '{eligible[0].name}'"
    else:
        summary = "no agent can run it: a submission would be refused (no_capable_agent)"
    return FindAgentsResult(eligible=eligible, not_eligible=others, summary=summary)
