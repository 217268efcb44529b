"""Agent health from executor heartbeats and server probes: pure, with an injected clock.

Executors are generic per agent type (any executor of type T runs any agent of type
T), so an agent is healthy while

1. at least one live executor serves its type (a live executor is one whose last
   heartbeat is younger than `executor_dead_after_s` of its own interval), and
2. where its server can be probed (LLM agents' endpoints, remote CLI agents' SSH
   hosts), the last `probe_failures` probes did not all fail.

Until the monitor has listened for one dead-after window it does not call an agent
unhealthy for want of heartbeats (it may just have started). The verdicts the
coordinator should record are those that differ from what it has; a verdict sent and
not yet reflected is not sent again for a while.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from whoosh_shared.contract.config import MonitoringSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import Heartbeat

RESEND_AFTER_S = 2.0
FORGET_DEAD_AFTER_S = 600.0


@dataclass(frozen=True)
class AgentInfo:
    """What health needs to know of an agent, from the coordinator's view."""

    name: str
    type: AgentType
    healthy: bool  # what the coordinator has recorded
    probed: bool  # whether the monitor probes its server


@dataclass(frozen=True)
class Verdict:
    agent: str
    healthy: bool
    reason: str | None = None


@dataclass
class ExecutorState:
    beat: Heartbeat
    last_seen: float
    first_seen: float

    @property
    def executor_id(self) -> str:
        return self.beat.executor_id


@dataclass
class ProbeState:
    failures: int = 0
    reason: str | None = None


@dataclass
class FleetHealth:
    settings: MonitoringSettings
    clock: Callable[[], float]
    executors: dict[str, ExecutorState] = field(default_factory=dict)
    agents: dict[str, AgentInfo] = field(default_factory=dict)
    probes: dict[str, ProbeState] = field(default_factory=dict)
    _sent: dict[str, tuple[bool, float]] = field(default_factory=dict)
    _started: float | None = None

    def __post_init__(self) -> None:
        self._started = self.clock()

    # -- inputs -----------------------------------------------------------------------

    def heartbeat(self, beat: Heartbeat) -> bool:
        """Record a heartbeat; True when it is the first from this executor (or it
        came back after being counted dead)."""
        now = self.clock()
        known = self.executors.get(beat.executor_id)
        fresh = known is None or not self._alive(known, now)
        first_seen = now if known is None or fresh else known.first_seen
        self.executors[beat.executor_id] = ExecutorState(beat, now, first_seen)
        return fresh

    def set_agents(self, agents: Iterable[AgentInfo]) -> None:
        self.agents = {agent.name: agent for agent in agents}
        for name in list(self.probes):
            if name not in self.agents or not self.agents[name].probed:
                del self.probes[name]
        for name in list(self._sent):
            if name not in self.agents:
                del self._sent[name]

    def probe_result(self, agent: str, ok: bool, reason: str | None = None) -> None:
        state = self.probes.setdefault(agent, ProbeState())
        if ok:
            state.failures, state.reason = 0, None
        else:
            state.failures, state.reason = state.failures + 1, reason

    # -- reading ----------------------------------------------------------------------

    def _dead_after(self, state: ExecutorState) -> float:
        return self.settings.executor_dead_after_s(state.beat.interval_s)

    def _alive(self, state: ExecutorState, now: float) -> bool:
        return now - state.last_seen <= self._dead_after(state)

    def live_executors(self) -> list[ExecutorState]:
        now = self.clock()
        return [s for s in self.executors.values() if self._alive(s, now)]

    def dead_executors(self) -> set[str]:
        """Executors that heartbeated and stopped (forgotten some minutes later)."""
        now = self.clock()
        for executor_id, state in list(self.executors.items()):
            if now - state.last_seen > FORGET_DEAD_AFTER_S:
                del self.executors[executor_id]
        return {i for i, s in self.executors.items() if not self._alive(s, now)}

    @property
    def listening_long_enough(self) -> bool:
        """Whether the absence of heartbeats means something yet (see the module doc)."""
        assert self._started is not None
        return self.clock() - self._started > self.settings.executor_dead_after_s(
            self.settings.health_check_interval / 5
        )

    def verdict(self, agent: AgentInfo) -> Verdict:
        now = self.clock()
        serving = [s for s in self.executors.values() if agent.type in s.beat.agent_types]
        live = [s for s in serving if self._alive(s, now)]
        if not live and self.listening_long_enough:
            if serving:
                silent = now - max(s.last_seen for s in serving)
                why = f"no heartbeat from any {agent.type.value} executor for {silent:.1f}s"
            else:
                why = f"no {agent.type.value} executor is sending heartbeats"
            return Verdict(agent.name, False, why)
        probe = self.probes.get(agent.name)
        if agent.probed and probe is not None and probe.failures >= self.settings.probe_failures:
            why = f"server not answering ({probe.failures} probes in a row): {probe.reason}"
            return Verdict(agent.name, False, why[:500])
        if not live:  # still listening: no judgement on executors yet
            return Verdict(agent.name, agent.healthy, None)
        return Verdict(agent.name, True, None)

    def verdicts(self) -> dict[str, Verdict]:
        return {name: self.verdict(agent) for name, agent in self.agents.items()}

    def changes(self) -> list[Verdict]:
        """Verdicts to send: those the coordinator does not have yet (each sent again
        only if it is still not reflected a little later)."""
        now = self.clock()
        due = []
        for name, agent in self.agents.items():
            verdict = self.verdict(agent)
            if verdict.healthy == agent.healthy:
                self._sent.pop(name, None)
                continue
            sent = self._sent.get(name)
            if sent is not None and sent[0] == verdict.healthy and now - sent[1] < RESEND_AFTER_S:
                continue
            self._sent[name] = (verdict.healthy, now)
            due.append(verdict)
        return due

    def unhealthy(self) -> dict[str, str]:
        """Agents judged unhealthy now, with the reason."""
        return {
            name: v.reason or "unhealthy" for name, v in self.verdicts().items() if not v.healthy
        }
