"""The scheduler's decision for one piece of work, in words: `explain(needs, agents, load)`.

Pure, and a dry run: it applies the scheduler's own rules (`why_not`, `rank`, the weighted
rotation's next pick without taking it), so what it says is what `choose` would do now.
Used by the ExplainTask query (`whoosh task get ID --explain`, GET /tasks/{id}/explain) and
meant for any "which agents could run this?" tool: build `Needs` and call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.explain import AgentConsidered, Explanation
from whoosh_shared.contract.queries import AgentView

from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import (
    ROTATION,
    Needs,
    Preference,
    is_cold,
    rank,
    why_not,
)
from whoosh_coordinator.scheduling.weights import WeightedRotation, weights_differ

CRITERIA = ("estimated completion time", "warm model", "lower load", "proficiency")


def explain(
    needs: Needs,
    agents: Iterable[AgentView],
    load: dict[UUID, int] | None = None,
    rotation: WeightedRotation = ROTATION,
    forecast: SlotForecast | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Every agent's verdict for `needs`, and what would decide among the free ones.
    `now` (else the forecast's) says which models are still loaded, as in `choose`."""
    if now is None and forecast is not None:
        now = forecast.now
    agents = sorted(agents, key=lambda a: a.spec.name)
    load = load if load is not None else {a.id: a.load for a in agents}
    reasons = {a.id: why_not(needs, a) for a in agents}
    eligible = [a for a in agents if reasons[a.id] is None]
    untried = [a for a in eligible if a.spec.name not in needs.tried_agents]
    pool = untried or eligible
    free = [a for a in pool if load[a.id] < a.spec.max_concurrent]
    ranked = rank(needs, free, load, now)
    estimates = {a.id: key[0] for key, a in ranked}
    for agent in eligible:
        if agent not in pool:
            reasons[agent.id] = "already tried this task (an untried agent is preferred)"
        elif agent not in free:
            reasons[agent.id] = f"full: {load[agent.id]}/{agent.spec.max_concurrent} slots busy"
    chosen, decision = _decide(needs, ranked, rotation, agents, eligible)
    held = _held_for(needs, forecast, ranked, [a for a in pool if a not in free])
    if held is not None:
        chosen, decision = None, held
    return Explanation(
        decision=decision,
        chosen=chosen.spec.name if chosen else None,
        needs=_needs_dict(needs),
        agents=[
            _considered(needs, a, load[a.id], reasons[a.id], a in free, estimates, chosen, now)
            for a in agents
        ],
    )


def _decide(
    needs: Needs,
    ranked: list[tuple[Preference, AgentView]],
    rotation: WeightedRotation,
    agents: list[AgentView],
    eligible: list[AgentView],
) -> tuple[AgentView | None, str]:
    if not agents:
        return None, "no agents are registered"
    if not eligible:
        return None, "waits: no agent can run it now (see each agent's reason)"
    if not ranked:
        busy = ", ".join(a.spec.name for a in eligible)
        return None, f"waits for a free slot on an eligible agent ({busy})"
    ranked = sorted(ranked, key=lambda pair: pair[0])
    if len(ranked) == 1:
        only = ranked[0][1]
        return only, f"{only.spec.name}: the only eligible agent with a free slot"
    if weights_differ([a.spec.weight for _, a in ranked]):
        picked = rotation.peek([(a.id, a.spec.weight) for _, a in ranked])
        agent = next(a for _, a in ranked if a.id == picked)
        shares = ", ".join(f"{a.spec.name} {a.spec.weight}" for _, a in ranked)
        return agent, f"{agent.spec.name}: traffic weights decide among free agents ({shares})"
    (best, agent), (second, runner_up) = ranked[0], ranked[1]
    if best == second:
        tied = ", ".join(a.spec.name for key, a in ranked if key == best)
        return agent, f"a tie between {tied}: chosen at random (they share the work)"
    criterion = next(i for i, (x, y) in enumerate(zip(best, second, strict=True)) if x != y)
    detail = ""
    if criterion == 0:
        detail = f" ({best[0]:g} s against {second[0]:g} s on {runner_up.spec.name})"
    return agent, f"{agent.spec.name}: {CRITERIA[criterion]}{detail}"


def _held_for(
    needs: Needs,
    forecast: SlotForecast | None,
    ranked: list[tuple[Preference, AgentView]],
    full: list[AgentView],
) -> str | None:
    """Why the work waits for a busy agent (lookahead.py), on a copy of the forecast."""
    if forecast is None or not ranked or not full:
        return None
    if weights_differ([a.spec.weight for _, a in ranked]):
        return None
    best_key, best = min(ranked, key=lambda pair: pair[0])
    copy = SlotForecast({k: list(v) for k, v in forecast.free_in.items()}, forecast.now)
    frees_in = {a.id: copy.free_in.get(a.id, [0.0])[0] for a in full}
    agent = copy.hold(needs, full, best_key[0])
    if agent is None:
        return None
    return (
        f"waits for {agent.spec.name}: busy, a slot expected free in ~{frees_in[agent.id]:.1f} s, "
        f"and it finishes sooner than {best.spec.name} ({best_key[0]:g} s) would"
    )


def _considered(
    needs: Needs,
    agent: AgentView,
    load: int,
    reason: str | None,
    free: bool,
    estimates: dict[UUID, float],
    chosen: AgentView | None,
    now: datetime | None,
) -> AgentConsidered:
    llm = agent.spec.type is not AgentType.CLI
    return AgentConsidered(
        agent=agent.spec.name,
        eligible=why_not(needs, agent) is None,
        free=free,
        reason=reason,
        load=load,
        capacity=agent.spec.max_concurrent,
        weight=agent.spec.weight,
        estimate_s=estimates.get(agent.id) if llm else None,
        warm=(not is_cold(needs, agent, now)) if llm and agent.inventory is not None else None,
        chosen=chosen is not None and chosen.id == agent.id,
    )


def _needs_dict(needs: Needs) -> dict[str, object]:
    return {
        "agent": needs.agent,
        "agent_type": needs.agent_type,
        "model": needs.model,
        "capabilities": list(needs.capabilities),
        "tried_agents": list(needs.tried_agents),
        "prompt_tokens": needs.prompt_tokens,
        "output_tokens": needs.output_tokens,
    }
