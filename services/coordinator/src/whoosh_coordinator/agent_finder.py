"""The answer to FindAgents: the scheduler's rules applied to needs without a task.

Uses the scheduler's own functions (eligibility pieces and preference), so the dry run
ranks agents as a placement would now; an agent's reason names the first rule it fails.
Pure: views in, fits out.
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


def reason_not(needs: s.Needs, agent: AgentView) -> str | None:
    """Why `agent` cannot run work with `needs` (its load aside), or None."""
    spec = agent.spec
    if not agent.enabled:
        return "disabled"
    if not agent.healthy:
        return f"unhealthy: {agent.health_reason or 'failed health checks'}"
    if not agent.reachable:
        why = agent.inventory.reason if agent.inventory else None
        return f"unreachable: {why or 'last probe failed'}"
    if needs.agent and needs.agent != spec.name:
        return f"the task is pinned to agent '{needs.agent}'"
    if needs.agent_type and needs.agent_type != spec.type.value:
        return f"it is a {spec.type.value} agent; the task needs {needs.agent_type}"
    model = s.model_of(needs, agent)
    if model is not None and not s.serves_model(agent, model):
        return f"its server does not have model '{model}'"
    for capability in needs.capabilities:
        if not s.offers(agent, capability, model):
            return f"it lacks capability '{capability}'"
    if not s.fits_context(needs, agent):
        return f"the prompt (~{needs.prompt_tokens} tokens) exceeds its model's context"
    if not s.eligible(needs, agent):  # a rule added to the scheduler and not named here
        return "the scheduler's rules exclude it"
    return None


def find_agents(query: FindAgents, agents: Iterable[AgentView]) -> AgentFits:
    needs = needs_of(query)
    fits, candidates = [], []
    for agent in sorted(agents, key=lambda a: a.spec.name):
        reason = reason_not(needs, agent)
        if reason is None:
            candidates.append(agent)
        else:
            fits.append(AgentFit(name=agent.spec.name, eligible=False, free_slots=0, reason=reason))
    ranked = sorted(candidates, key=lambda a: _order(needs, a, candidates))
    eligible = [
        AgentFit(
            name=agent.spec.name,
            eligible=True,
            rank=position,
            free_slots=max(0, agent.spec.max_concurrent - agent.load),
        )
        for position, agent in enumerate(ranked, start=1)
    ]
    return AgentFits(agents=eligible + fits)


def _order(needs: s.Needs, agent: AgentView, candidates: list[AgentView]) -> tuple[object, ...]:
    """Agents with a free slot first, then the scheduler's preference, then the name."""
    etas = [s._eta(needs, a, a.load) for a in candidates]
    neutral = min((eta for eta in etas if eta is not None), default=0.0)
    eta = s._eta(needs, agent, agent.load)
    full = agent.load >= agent.spec.max_concurrent
    return (full, s._preference(needs, agent, agent.load, eta, neutral), agent.spec.name)
