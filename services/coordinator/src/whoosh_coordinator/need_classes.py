"""Queued work grouped by what it asks of an agent, so a pass can skip whole groups.

A scheduling pass used to walk every queued task even when no free slot could take any of
them (100,000 queued tasks that all need a capability no free agent has: ~1.6 s a pass,
on every event). Tasks that ask for the same pinned agent, agent type, model and
capabilities form one class; a pass first asks, per class, whether any free agent could
take such work at all, and reads only the tasks of the classes that pass. Then the cost
of a pass where nothing fits is (classes x free agents), whatever the queue's length.

The test is sound (it never skips a task that `choose` would place): it asks about the
class with an empty prompt and no tried agents, and both only shrink the set of agents
`choose` may pick (a longer prompt fits fewer contexts; a retry only narrows to untried
agents when one exists). Loads only grow during a pass, so a class that cannot fit at
the start of a pass cannot fit later in it. Pure: views in.
"""

from __future__ import annotations

from collections.abc import Iterable

from whoosh_shared.contract.queries import AgentView, TaskView

from whoosh_coordinator.scheduling.scheduler import Needs, eligible

NeedClass = tuple[str | None, str | None, str | None, tuple[str, ...]]


def need_class(task: TaskView) -> NeedClass:
    """The part of a task's needs that decides which agents could ever take it."""
    return (task.pinned_agent, task.agent_type, task.model, tuple(task.capabilities))


def free_agents(agents: Iterable[AgentView]) -> list[AgentView]:
    """Agents in rotation with a free slot: the only ones a pass can give work to."""
    return [a for a in agents if a.in_rotation and a.load < a.spec.max_concurrent]


def could_fit(klass: NeedClass, free: Iterable[AgentView]) -> bool:
    """Whether some free agent could take some task of this class (see the module doc)."""
    agent, agent_type, model, capabilities = klass
    needs = Needs(agent=agent, agent_type=agent_type, model=model, capabilities=capabilities)
    return any(eligible(needs, candidate) for candidate in free)


def fitting(classes: Iterable[NeedClass], agents: Iterable[AgentView]) -> list[NeedClass]:
    """The classes whose tasks a pass must look at, given the agents' current state."""
    free = free_agents(agents)
    if not free:
        return []
    return [klass for klass in classes if could_fit(klass, free)]


def usable_slots(classes: Iterable[NeedClass], agents: Iterable[AgentView]) -> int:
    """Free slots of the agents that could take some task of `classes`: the most a pass
    over those classes can place, so it may stop reading once that many are placed (a
    free slot no queued task may use no longer makes it read the whole queue)."""
    free, kinds = free_agents(agents), list(classes)
    return sum(
        agent.spec.max_concurrent - agent.load
        for agent in free
        if any(could_fit(klass, [agent]) for klass in kinds)
    )
