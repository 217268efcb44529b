"""Which queued task goes to which agent. Pure: views in, a plan out.

Rules, in order: a task only goes to an enabled agent that matches its pinned
agent, agent type, model and every required capability; higher priority first,
then submission order (a task that cannot be placed does not block the ones
behind it); never more than an agent's max_concurrent; a retry prefers agents
not yet tried; among eligible agents the least loaded (relative to its
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


def eligible(task: TaskView, agent: AgentView) -> bool:
    """Could this agent ever run this task (ignoring its current load)?"""
    spec = agent.spec
    if not agent.enabled:
        return False
    if task.pinned_agent and task.pinned_agent != spec.name:
        return False
    if task.agent_type and task.agent_type != spec.type.value:
        return False
    if task.model and task.model != spec.model:
        return False
    return all(capability in spec.capabilities for capability in task.capabilities)


def plan(queued: Iterable[TaskView], agents: Iterable[AgentView], now: datetime) -> list[Placement]:
    """Placements for as many queued tasks as free slots allow; `queued` is in priority order."""
    agents = list(agents)
    taken = {agent.id: agent.load for agent in agents}
    placements: list[Placement] = []
    for task in queued:
        if task.not_before and task.not_before > now:
            continue
        free = [a for a in agents if taken[a.id] < a.spec.max_concurrent and eligible(task, a)]
        if not free:
            continue
        untried = [a for a in free if a.spec.name not in task.tried_agents]
        chosen = min(untried or free, key=lambda a: _preference(task, a, taken[a.id]))
        taken[chosen.id] += 1
        placements.append(Placement(task.id, chosen.id, chosen.spec.name))
    return placements


def _preference(task: TaskView, agent: AgentView, load: int) -> tuple[float, float, str]:
    proficiency = sum(agent.spec.capabilities.get(c, 0.0) for c in task.capabilities)
    return (load / agent.spec.max_concurrent, -proficiency, agent.spec.name)
