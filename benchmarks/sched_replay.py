"""WHOOSH's scheduling decisions on a simulated clock: decision quality without system overhead.

`bench_scheduling.py` runs the workload through the real services, so its WHOOSH latencies
hold two things: where the scheduler put each task (decision quality) and what the
processes cost on the way (NATS, the store, the executor, HTTP, a loaded machine). This
module measures the first alone: a discrete-event simulation of the same fleet, with the
same cost model as the omniscient schedule (`Server.seconds`, the same keep-alive rule),
driven by the coordinator's own `scheduler.plan` with its slot forecast (lookahead.py) and
its speed estimates learned through the projection's `estimates.observe` from each
completed task's usage, exactly as the coordinator folds them. Nothing is known to it
that the coordinator would not know, except one simplification: the server's loaded
models are read at each decision (the coordinator has them from the executor's last
probe, a few seconds old).

Every decision takes zero time: a task is placed the moment it arrives or a slot frees,
and starts at once. So `replayed p99 / omniscient p99` is the decision quality, and
`measured p99 / replayed p99` what the running system adds.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from whoosh_coordinator.scheduling.estimates import observe
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import plan
from whoosh_coordinator.scheduling.weights import WeightedRotation
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import LlmOptions, Usage
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.inventory import Inventory, ModelFacts, Warmth, model_key
from whoosh_shared.contract.queries import AgentView, TaskView

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
WORD = "abc "  # 4 characters: one token to WHOOSH's estimate, as in bench_scheduling


class ServerLike(Protocol):
    name: str
    decode_tps: float
    slots: int
    cold_s: float
    models: tuple[str, ...]

    @property
    def prefill(self) -> float: ...

    def seconds(self, task: Any, cold: bool) -> float: ...


class TaskLike(Protocol):
    index: int
    arrival_s: float
    model: str
    prompt_tokens: int
    output_tokens: int


@dataclass
class Replayed:
    """What the replay measured, in the shape of bench_scheduling's Outcome."""

    latencies: list[float]
    makespan_s: float
    servers: dict[str, Any]
    placed: dict[str, int]
    double_booked: int = 0


@dataclass
class _Running:
    task: TaskLike
    server: str
    begin: float
    end: float
    cold: bool


@dataclass
class _Fleet:
    servers: dict[str, ServerLike]
    keep_alive_s: float
    agents: dict[str, AgentView] = field(default_factory=dict)
    last_use: dict[tuple[str, str], float] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)  # server -> streams now

    def loaded(self, name: str, now: float) -> list[str]:
        server = self.servers[name]
        idle_ok = self.keep_alive_s
        return [
            m
            for m in server.models
            if self.running.get(f"{name}/{m}", 0) or now - self.last_use[(name, m)] <= idle_ok
        ]

    def warmth(self, name: str) -> dict[str, Warmth]:
        """Each model's warmth as the server has it (the coordinator folds its own from
        probes, slots and completions: scheduling/warmth.py)."""
        return {
            model_key(m): Warmth(
                until=EPOCH + timedelta(seconds=self.last_use[(name, m)] + self.keep_alive_s),
                running=self.running.get(f"{name}/{m}", 0),
            )
            for m in self.servers[name].models
        }


def _agent_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"whoosh-replay/{name}")


def _task_id(index: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"whoosh-replay/task/{index}")


def replay(
    tasks: Sequence[TaskLike],
    servers: Sequence[ServerLike],
    keep_alive_s: float,
    seed: int = 7,
) -> Replayed:
    """Run `tasks` (in arrival order) through WHOOSH's scheduler on a simulated clock."""
    fleet = _Fleet({s.name: s for s in servers}, keep_alive_s)
    for server in servers:
        fleet.agents[server.name] = _agent_view(server)
        for model in server.models:
            fleet.last_use[(server.name, model)] = 0.0
            _warm_up(fleet, server, model)
    rng = random.Random(seed)
    views: dict[UUID, TaskView] = {}
    queued: list[TaskView] = []
    ends: list[tuple[float, int, _Running]] = []
    arrivals = sorted(tasks, key=lambda t: (t.arrival_s, t.index))
    by_id = {_task_id(t.index): t for t in arrivals}
    latencies: list[float] = []
    busy = {s.name: 0.0 for s in servers}
    placed: dict[str, int] = {}
    double_booked = 0
    at = 0
    clock = 0.0
    while at < len(arrivals) or ends:
        next_arrival = arrivals[at].arrival_s if at < len(arrivals) else float("inf")
        clock = min(next_arrival, ends[0][0] if ends else float("inf"))
        while ends and ends[0][0] <= clock:
            _, _, run = heapq.heappop(ends)
            _finish(fleet, run, views)
            latencies.append(run.end - run.task.arrival_s)
            busy[run.server] += run.end - run.begin
        while at < len(arrivals) and arrivals[at].arrival_s <= clock:
            view = _task_view(arrivals[at], clock)
            views[view.id] = view
            queued.append(view)
            at += 1
        now = EPOCH + timedelta(seconds=clock)
        agents = list(fleet.agents.values())
        for name, agent in fleet.agents.items():  # as a probe reports: models in memory now
            assert agent.inventory is not None
            agent.inventory.loaded = fleet.loaded(name, clock)
            agent.warmth = fleet.warmth(name)
        forecast = SlotForecast.of(agents, views, now)
        for placement in plan(list(queued), agents, now, rng, WeightedRotation(), forecast):
            view = views[placement.task_id]
            queued.remove(view)
            agent = fleet.agents[placement.agent_name.removeprefix("bench-")]
            if agent.load >= agent.spec.max_concurrent:
                double_booked += 1
            run = _start(fleet, by_id[view.id], placement.agent_name, clock, view, now)
            heapq.heappush(ends, (run.end, run.task.index, run))
            placed[run.server] = placed.get(run.server, 0) + 1
    report = {
        s.name: {
            "utilisation": round(busy[s.name] / (s.slots * clock), 3) if clock else 0.0,
            "waited_for_slot": 0,
            "slots": s.slots,
        }
        for s in servers
    }
    return Replayed(latencies, clock, report, placed, double_booked)


def _agent_view(server: ServerLike) -> AgentView:
    spec = AgentSpec(
        name=f"bench-{server.name}",
        type=AgentType.OLLAMA,
        endpoint="http://127.0.0.1:9",
        model=server.models[0],
        max_concurrent=server.slots,
    )
    inventory = Inventory(
        reachable=True,
        models={model_key(m): ModelFacts(context_length=8192) for m in server.models},
        loaded=list(server.models),
    )
    return AgentView(id=_agent_id(server.name), spec=spec, enabled=True, inventory=inventory)


def _warm_up(fleet: _Fleet, server: ServerLike, model: str) -> None:
    """bench_scheduling warms every model with one small (cold) request first: the
    coordinator has measured each speed once before the workload starts."""
    usage = Usage(
        tokens_in=16,
        tokens_out=8,
        load_s=server.cold_s,
        prefill_tps=server.prefill,
        decode_tps=server.decode_tps,
    )
    _observe(fleet.agents[server.name], model, usage, streams=1)


def _observe(agent: AgentView, model: str, usage: Usage, streams: int) -> None:
    key = model_key(model)
    stats = observe(agent.speeds.get(key), usage, streams)
    if stats is not None:
        agent.speeds[key] = stats


def _task_view(task: TaskLike, clock: float) -> TaskView:
    return TaskView(
        id=_task_id(task.index),
        status=TaskStatus.QUEUED,
        prompt=WORD * task.prompt_tokens,
        priority=0,
        capabilities=[],
        agent_type=AgentType.OLLAMA.value,
        model=task.model,
        timeout_s=600,
        llm=LlmOptions(options={"num_predict": task.output_tokens}),
        max_attempts=1,
        submitted_at=EPOCH + timedelta(seconds=clock),
        sequence=task.index + 1,
        submitted_by="bench",
    )


def _start(
    fleet: _Fleet, task: TaskLike, agent_name: str, clock: float, view: TaskView, now: datetime
) -> _Running:
    name = agent_name.removeprefix("bench-")
    server = fleet.servers[name]
    streams_key = f"{name}/{task.model}"
    cold = not fleet.running.get(streams_key, 0) and (
        clock - fleet.last_use[(name, task.model)] > fleet.keep_alive_s
    )
    fleet.running[streams_key] = fleet.running.get(streams_key, 0) + 1
    agent = fleet.agents[name]
    agent.in_flight.append(view.id)
    view.status, view.agent, view.assigned_at, view.started_at = (
        TaskStatus.RUNNING,
        agent_name,
        now,
        now,
    )
    return _Running(task, name, clock, clock + server.seconds(task, cold), cold)


def _finish(fleet: _Fleet, run: _Running, views: dict[UUID, TaskView]) -> None:
    """The slot frees and the coordinator folds the usage, as projections._measure does."""
    server = fleet.servers[run.server]
    agent = fleet.agents[run.server]
    streams = agent.load  # this task still counted, as when the completion is folded
    task_id = _task_id(run.task.index)
    agent.in_flight.remove(task_id)
    fleet.running[f"{run.server}/{run.task.model}"] -= 1
    key = (run.server, run.task.model)
    fleet.last_use[key] = max(fleet.last_use[key], run.end)
    usage = Usage(
        duration_s=run.end - run.begin,
        tokens_in=run.task.prompt_tokens,
        tokens_out=run.task.output_tokens,
        load_s=server.cold_s if run.cold else 0.001,
        prefill_tps=server.prefill,
        decode_tps=server.decode_tps,
    )
    _observe(agent, run.task.model, usage, streams)
    views[task_id].status = TaskStatus.COMPLETED
