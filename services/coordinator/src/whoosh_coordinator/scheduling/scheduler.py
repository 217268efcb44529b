"""Which queued task goes to which agent. Pure: views in, a plan out.

Rules, in order: a task only goes to an enabled, healthy, reachable, not drained (weight 0)
agent that matches its pinned agent and agent type, whose server has the model (by its last
probed inventory, else by the agent's configured model) and every required capability
(configured, or reported for that model), and whose model can read the prompt (context
length); higher priority first, then submission order (a task that cannot be placed does not
block the ones behind it); never more than an agent's max_concurrent; a retry waits for an
agent it has not tried while there is one. Among eligible agents: the shortest estimated
completion time (measured speed, expected tokens, load; an unmeasured LLM agent counts as
instant so it gets measured, a CLI agent as the best of the others), then a warm model, then
the least loaded (relative to capacity), then the most proficient, and a tie at random so
equal agents share work. Agents whose traffic weights differ instead share new work in
proportion to their weights (weights.py), best estimate first on a tie.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import ModelFacts, model_key
from whoosh_shared.contract.queries import AgentView, TaskView

from whoosh_coordinator.scheduling.estimates import (
    DEFAULT_OUTPUT_TOKENS,
    expected_seconds,
    task_prompt_tokens,
)
from whoosh_coordinator.scheduling.warmth import is_warm
from whoosh_coordinator.scheduling.weights import WeightedRotation, weights_differ

if TYPE_CHECKING:
    from whoosh_coordinator.scheduling.lookahead import SlotForecast

_RANDOM = random.Random()
_ROTATION = WeightedRotation()  # only for callers without a projection (the coordinator
ROTATION = _ROTATION  # passes a copy of the credits folded from events: weights.py)
Preference = tuple[float, bool, float, float]


@dataclass(frozen=True)
class Placement:
    task_id: UUID
    agent_id: UUID
    agent_name: str
    weighted_among: dict[str, int] | None = None  # the weights' turn, if they decided


@dataclass(frozen=True)
class Needs:
    """What a task asks of an agent: the part of a task the rules look at."""

    agent: str | None = None
    agent_type: str | None = None
    model: str | None = None
    capabilities: tuple[str, ...] = ()
    tried_agents: tuple[str, ...] = ()
    prompt_tokens: int = 0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    @classmethod
    def of(cls, task: TaskView) -> Needs:
        llm = task.llm
        return cls(
            task.pinned_agent,
            task.agent_type,
            task.model,
            tuple(task.capabilities),
            tuple(task.tried_agents),
            task_prompt_tokens(task.prompt, task.prompt_ref, llm.system if llm else None),
            expected_output_tokens(llm.options if llm else {}),
        )


def expected_output_tokens(options: dict[str, object]) -> int:
    limit = options.get("num_predict")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit
    return DEFAULT_OUTPUT_TOKENS


def model_of(needs: Needs, agent: AgentView) -> str | None:
    """The model the agent would run the task with: the task's, else its own."""
    return needs.model or agent.spec.model


def facts_of(agent: AgentView, model: str | None) -> ModelFacts | None:
    if model is None or agent.inventory is None:
        return None
    return agent.inventory.facts(model)


def serves_model(agent: AgentView, model: str) -> bool:
    """Whether the agent's server has the model: its last probe listed it (and no call
    answered 404 for it since), or, never probed, it is the agent's configured model."""
    key = model_key(model)
    if any(model_key(missing) == key for missing in agent.missing_models):
        return False
    inventory = agent.inventory
    if inventory is not None and inventory.models:
        return inventory.facts(model) is not None
    return agent.spec.model is not None and model_key(agent.spec.model) == key


def offers(agent: AgentView, capability: str, model: str | None) -> bool:
    facts = facts_of(agent, model)
    return capability in agent.spec.capabilities or (
        facts is not None and capability in facts.capabilities
    )


def offered_capabilities(agent: AgentView) -> set[str]:
    """Everything the agent offers: configured, or reported for any model on its server."""
    reported = agent.inventory.models.values() if agent.inventory else ()
    return set(agent.spec.capabilities).union(*(facts.capabilities for facts in reported))


def fits_context(needs: Needs, agent: AgentView) -> bool:
    facts = facts_of(agent, model_of(needs, agent))
    limit = facts.context_length if facts else None
    return limit is None or needs.prompt_tokens <= limit


def eligible(needs: Needs, agent: AgentView, ignore_state: bool = False) -> bool:
    """Could this agent run this work (ignoring its current load)? `ignore_state` also
    ignores whether it is enabled, healthy, reachable and not drained: those come back."""
    return why_not(needs, agent, ignore_state) is None


def why_not(needs: Needs, agent: AgentView, ignore_state: bool = False) -> str | None:
    """Why this agent cannot run this work (load aside), or None if it can: the one place
    the eligibility rules live, so `explain` says exactly what the scheduler does."""
    spec = agent.spec
    if not ignore_state:
        state = _out_of_rotation(agent)
        if state is not None:
            return state
    if needs.agent and needs.agent != spec.name:
        return f"the task is pinned to agent '{needs.agent}'"
    if needs.agent_type and needs.agent_type != spec.type.value:
        return f"it is a {spec.type.value} agent; the task needs {needs.agent_type}"
    model = model_of(needs, agent)
    if model is not None and not serves_model(agent, model):
        return f"its server does not have model '{model}'"
    for capability in needs.capabilities:
        if not offers(agent, capability, model):
            return f"it lacks capability '{capability}'"
    if not fits_context(needs, agent):
        facts = facts_of(agent, model)
        limit = facts.context_length if facts else None
        return f"the prompt (~{needs.prompt_tokens} tokens) exceeds its context of {limit}"
    return None


def _out_of_rotation(agent: AgentView) -> str | None:
    if not agent.enabled:
        return "disabled"
    if not agent.healthy:
        return f"unhealthy: {agent.health_reason or 'failed health checks'}"
    if not agent.reachable:
        reason = agent.inventory.reason if agent.inventory else None
        return f"unreachable: {reason or 'last probe failed'}"
    if agent.spec.weight == 0:
        return "draining (weight 0): no new work"
    return None


def choose(
    needs: Needs,
    agents: Iterable[AgentView],
    load: dict[UUID, int],
    rng: random.Random = _RANDOM,
    rotation: WeightedRotation = _ROTATION,
    forecast: SlotForecast | None = None,
    now: datetime | None = None,
) -> AgentView | None:
    """The agent for one piece of work, or None if it should wait for a slot.

    A retry waits for an agent it has not tried yet, even a busy one, rather than go
    straight back to the agent that just failed it; only when every eligible agent has
    been tried may it run on one of them again. Agents whose traffic weights differ share
    the work in proportion to them (weights.py); equal weights leave it to the estimates.
    `now` (else the forecast's) says which models are still loaded (warmth.py)."""
    if now is None and forecast is not None:
        now = forecast.now
    candidates = [a for a in agents if eligible(needs, a)]
    untried = [a for a in candidates if a.spec.name not in needs.tried_agents]
    free = [a for a in untried or candidates if load[a.id] < a.spec.max_concurrent]
    if not free:
        return None
    ranked = rank(needs, free, load, now)
    if weights_differ([agent.spec.weight for _, agent in ranked]):
        ranked.sort(key=lambda pair: pair[0])
        picked = rotation.pick([(agent.id, agent.spec.weight) for _, agent in ranked])
        return next(agent for _, agent in ranked if agent.id == picked)
    best = min(key for key, _ in ranked)
    if forecast is not None:  # a busy agent may finish it much sooner (lookahead.py)
        full = [a for a in untried or candidates if load[a.id] >= a.spec.max_concurrent]
        if full and forecast.hold(needs, full, best[0]) is not None:
            return None
    tied = [agent for key, agent in ranked if key == best]
    return tied[0] if len(tied) == 1 else rng.choice(tied)


def rank(
    needs: Needs, free: list[AgentView], load: dict[UUID, int], now: datetime | None = None
) -> list[tuple[Preference, AgentView]]:
    """Each agent with its preference key (smaller is better), in the given order."""
    etas = {a.id: _eta(needs, a, load[a.id], now) for a in free}
    neutral = min((eta for eta in etas.values() if eta is not None), default=0.0)
    return [(_preference(needs, a, load[a.id], etas[a.id], neutral, now), a) for a in free]


def plan(
    queued: Iterable[TaskView],
    agents: Iterable[AgentView],
    now: datetime,
    rng: random.Random = _RANDOM,
    rotation: WeightedRotation = _ROTATION,
    forecast: SlotForecast | None = None,
    slots: int | None = None,
) -> list[Placement]:
    """Placements for as many queued tasks as free slots allow; `queued` is in priority order.
    `slots`: how many of the free slots the queued tasks could use at most, when the
    caller knows (need_classes.usable_slots); the pass stops once that many are given."""
    agents = [agent for agent in agents if agent.in_rotation]
    load = {agent.id: agent.load for agent in agents}
    free = sum(max(0, agent.spec.max_concurrent - agent.load) for agent in agents)
    if slots is not None:
        free = min(free, slots)
    placements: list[Placement] = []
    stuck = _Stuck()
    for task in queued:
        if len(placements) == free:
            break  # every slot is given: a long queue costs nothing more
        if task.not_before and task.not_before > now:
            continue
        needs = Needs.of(task)
        if stuck.known(needs):
            continue
        chosen = choose(needs, agents, load, rng, rotation, forecast, now)
        if chosen is None:
            if not (forecast and forecast.held):  # held for a busy agent is not stuck
                stuck.add(needs)
            continue
        load[chosen.id] += 1
        if forecast is not None:  # the slot's expected end, for work later in this pass
            forecast.took(needs, chosen, load[chosen.id] - 1)
        turn = rotation.take_turn()
        placements.append(Placement(task.id, chosen.id, chosen.spec.name, turn))
    return placements


class _Stuck:
    """Needs that found no agent in this pass, so that thousands of queued tasks waiting
    for the same busy model cost one look each, not one walk over every agent each.

    Loads only grow during a pass, and a longer prompt fits fewer agents, so a first try
    (no agents tried yet) that found nobody means nobody for the same needs with a prompt
    at least as long. Retries are always looked at: their fallback to tried agents is
    not monotone in the prompt."""

    def __init__(self) -> None:
        self._shortest: dict[tuple[object, ...], int] = {}  # needs -> shortest stuck prompt

    @staticmethod
    def _key(needs: Needs) -> tuple[object, ...]:
        return (needs.agent, needs.agent_type, needs.model, needs.capabilities)

    def known(self, needs: Needs) -> bool:
        if needs.tried_agents:
            return False
        shortest = self._shortest.get(self._key(needs))
        return shortest is not None and needs.prompt_tokens >= shortest

    def add(self, needs: Needs) -> None:
        if not needs.tried_agents:
            key = self._key(needs)
            self._shortest[key] = min(needs.prompt_tokens, self._shortest.get(key, 1 << 62))


def is_cold(needs: Needs, agent: AgentView, now: datetime | None = None) -> bool:
    """Whether the model is not loaded at `now` (a load is ahead), by its warmth folded
    from probes, slots and completions (warmth.py: Ollama unloads a model its keep-alive
    after the last use). Unprobed servers and agents without a model to load are not
    known to be cold."""
    model = model_of(needs, agent)
    if agent.spec.type is AgentType.CLI or not model or agent.inventory is None:
        return False
    return not is_warm(agent.warmth.get(model_key(model)), now)


def expected_on(
    needs: Needs, agent: AgentView, load: int, now: datetime | None = None
) -> float | None:
    """Estimated seconds of this work on this agent at this load (see `_eta`)."""
    return _eta(needs, agent, load, now)


def _eta(needs: Needs, agent: AgentView, load: int, now: datetime | None) -> float | None:
    """Estimated seconds on an LLM agent (0 while unmeasured, so it gets measured); None
    for an agent whose speed is not measured in tokens (a CLI agent)."""
    model = model_of(needs, agent)
    if agent.spec.type is AgentType.CLI or not model:
        return None
    stats = agent.speeds.get(model_key(model))
    return expected_seconds(
        stats,
        needs.prompt_tokens,
        needs.output_tokens,
        not is_cold(needs, agent, now),
        load,
        agent.spec.max_concurrent,
    )


def _preference(
    needs: Needs,
    agent: AgentView,
    load: int,
    eta: float | None,
    neutral: float,
    now: datetime | None,
) -> Preference:
    """Smaller is better. An agent without an estimate (a CLI agent in a mixed fleet)
    counts as the best estimate among the others: load and proficiency decide then."""
    proficiency = sum(agent.spec.capabilities.get(c, 0.0) for c in needs.capabilities)
    seconds = neutral if eta is None else eta
    capacity = agent.spec.max_concurrent
    return (round(seconds, 3), is_cold(needs, agent, now), load / capacity, -proficiency)
