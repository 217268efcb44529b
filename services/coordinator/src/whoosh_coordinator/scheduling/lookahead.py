"""Holding work for a busy agent that would still finish it much sooner.

Choosing only among agents with a free slot sends a long generation to a slow server the
moment the fast one is full, although the fast one frees a slot in a second and would
finish it in a quarter of the time: on a 1x-8x fleet that one placement decides the tail
latency. So, when the best free agent's estimate is known, the scheduler also looks at the
full eligible agents: when one of them is expected to free a slot and finish the work at
least HOLD_MARGIN sooner than the best free agent would, the work waits for it, and that
slot is promised to it (the next work in the same pass sees the slot after). This is the
clairvoyant "earliest finish" rule of an omniscient schedule, with estimates in place of
knowledge.

Only measured agents count: an agent whose running work has no estimate (a CLI agent, an
unmeasured model, a task this coordinator has not folded) is never waited for. Work that
overran its estimate is assumed to run as long again (it may be a long answer), so a bad
estimate makes the scheduler wait less, not more. Weighted agents are not held for
(weights are a share among free agents, never a reason to queue). Pure: views in.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from uuid import UUID

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.queries import AgentView, TaskView

from whoosh_coordinator.scheduling.scheduler import Needs, expected_on

HOLD_MARGIN = 0.9  # wait only for a finish at least 10 % sooner than the best free agent's


class SlotForecast:
    """Per measured agent: estimated seconds until each of its busy slots frees.

    Kept for every LLM agent whose running work all has an estimate, not only the full
    ones: a scheduling pass that fills an agent's last slots (`took`) knows when those
    slots free again, so the next work in the same pass may still wait for that agent.
    Without that, a burst of arrivals filled the fast agent and then went to the slow
    ones, though the fast one would have finished each sooner."""

    def __init__(
        self,
        free_in: dict[UUID, list[float]] | None = None,
        now: datetime | None = None,
        estimate: Callable[[], dict[UUID, list[float]]] | None = None,
    ) -> None:
        """`free_in` as known, or `estimate` to work it out when first asked for."""
        self._free_in = free_in
        self._estimate = estimate
        self.now = now  # the pass's clock: which models are still loaded (warmth.py)
        self.held = False  # whether the last `hold` call decided to wait

    @property
    def free_in(self) -> dict[UUID, list[float]]:
        if self._free_in is None:
            self._free_in = self._estimate() if self._estimate is not None else {}
        return self._free_in

    @classmethod
    def of(
        cls, agents: Iterable[AgentView], tasks: Mapping[UUID, TaskView], now: datetime
    ) -> SlotForecast:
        """The forecast of these views, estimated only once something asks for it: a
        placement among agents that all have a free slot never does, and estimating every
        running task's end cost ~0.25 ms per submit with 64 LLM tasks running (cProfile,
        bench_llm_overhead at C=64). Used within one synchronous decision, so the views it
        estimates from are the ones it was made of."""
        agents = list(agents)
        return cls(now=now, estimate=lambda: _free_in(agents, tasks, now))

    def took(self, needs: Needs, agent: AgentView, others: int) -> None:
        """The pass gave this work a slot of `agent` (beside `others` running there)."""
        slots = self.free_in.get(agent.id)
        if slots is None:
            return  # running work without an estimate: never waited for
        seconds = expected_on(needs, agent, others, self.now)
        if seconds:
            insort(slots, seconds)
        else:
            del self.free_in[agent.id]  # no estimate for this work: not waited for

    def hold(self, needs: Needs, full: Iterable[AgentView], best_free_s: float) -> AgentView | None:
        """The full agent worth waiting for (its next slot is then promised), or None."""
        self.held = False
        if best_free_s <= 0:
            return None  # the best free agent is unmeasured: try it (and measure it)
        best: tuple[float, AgentView, float] | None = None
        for agent in full:
            slots = self.free_in.get(agent.id)
            seconds = expected_on(needs, agent, agent.spec.max_concurrent - 1, self.now)
            if not slots or len(slots) < agent.spec.max_concurrent or not seconds:
                continue
            finish = slots[0] + seconds
            if best is None or finish < best[0]:
                best = (finish, agent, seconds)
        if best is None or best[0] >= HOLD_MARGIN * best_free_s:
            return None
        _, agent, seconds = best
        slots = self.free_in[agent.id]
        insort(slots, slots.pop(0) + seconds)
        self.held = True
        return agent


def _free_in(
    agents: Iterable[AgentView], tasks: Mapping[UUID, TaskView], now: datetime
) -> dict[UUID, list[float]]:
    free_in: dict[UUID, list[float]] = {}
    for agent in agents:
        if agent.spec.type is AgentType.CLI:
            continue
        times = [_remaining(agent, tasks.get(task_id), now) for task_id in agent.in_flight]
        if all(t is not None for t in times):
            free_in[agent.id] = sorted(t for t in times if t is not None)
    return free_in


def _remaining(agent: AgentView, task: TaskView | None, now: datetime) -> float | None:
    """Estimated seconds until this running work ends, or None if there is no estimate."""
    if task is None:
        return None
    seconds = expected_on(Needs.of(task), agent, max(0, agent.load - 1), now)
    if not seconds:
        return None
    began = task.started_at or task.assigned_at
    elapsed = max(0.0, (now - began).total_seconds()) if began else 0.0
    return seconds - elapsed if seconds > elapsed else elapsed
