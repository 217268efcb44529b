"""Which queued task goes to which agent. Pure: views in, a plan out.

Rules, in order: a task only goes to an enabled agent that matches its pinned
agent, agent type, model and every required capability; higher priority first,
then submission order (a task that cannot be placed does not block the ones
behind it); never more than an agent's max_concurrent; a retry waits for an
agent it has not tried while there is one; among eligible agents the least loaded (relative to its
capacity) wins, then the most proficient, then the name for determinism.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from whoosh_shared.queries import AgentView, TaskView


@dataclass(frozen=True)
class Placement:
    task_id: UUID
    agent_id: UUID
    agent_name: str


@dataclass(frozen=True)
class Needs:
    """What a task asks of an agent: the part of a task the rules look at."""

    agent: str | None = None
    agent_type: str | None = None
    model: str | None = None
    capabilities: tuple[str, ...] = ()
    tried_agents: tuple[str, ...] = ()

    @classmethod
    def of(cls, task: TaskView) -> Needs:
        return cls(
            task.pinned_agent,
            task.agent_type,
            task.model,
            tuple(task.capabilities),
            tuple(task.tried_agents),
        )


def eligible(needs: Needs, agent: AgentView, ignore_enabled: bool = False) -> bool:
    """Could this agent ever run this work (ignoring its current load)?"""
    spec = agent.spec
    if not (agent.enabled or ignore_enabled):
        return False
    if needs.agent and needs.agent != spec.name:
        return False
    if needs.agent_type and needs.agent_type != spec.type.value:
        return False
    if needs.model and needs.model != spec.model:
        return False
    return all(capability in spec.capabilities for capability in needs.capabilities)


def choose(needs: Needs, agents: Iterable[AgentView], load: dict[UUID, int]) -> AgentView | None:
    """The agent for one piece of work, or None if it should wait for a slot.

    A retry waits for an agent it has not tried yet, even a busy one, rather than go
    straight back to the agent that just failed it; only when every eligible agent has
    been tried may it run on one of them again."""
    candidates = [a for a in agents if eligible(needs, a)]
    untried = [a for a in candidates if a.spec.name not in needs.tried_agents]
    free = [a for a in untried or candidates if load[a.id] < a.spec.max_concurrent]
    if not free:
        return None
    return min(free, key=lambda a: _preference(needs, a, load[a.id]))


def plan(queued: Iterable[TaskView], agents: Iterable[AgentView], now: datetime) -> list[Placement]:
    """Placements for as many queued tasks as free slots allow; `queued` is in priority order."""
    agents = [agent for agent in agents if agent.enabled]
    load = {agent.id: agent.load for agent in agents}
    free = sum(max(0, agent.spec.max_concurrent - agent.load) for agent in agents)
    placements: list[Placement] = []
    for task in queued:
        if len(placements) == free:
            break  # every slot is given: a long queue costs nothing more
        if task.not_before and task.not_before > now:
            continue
        chosen = choose(Needs.of(task), agents, load)
        if chosen is not None:
            load[chosen.id] += 1
            placements.append(Placement(task.id, chosen.id, chosen.spec.name))
    return placements


def _preference(needs: Needs, agent: AgentView, load: int) -> tuple[float, float, str]:
    proficiency = sum(agent.spec.capabilities.get(c, 0.0) for c in needs.capabilities)
    return (load / agent.spec.max_concurrent, -proficiency, agent.spec.name)
