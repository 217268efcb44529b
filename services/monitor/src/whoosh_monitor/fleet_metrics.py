"""Gauges of the fleet as it is now: tasks, agents, executors, hosts, GPUs, alerts.

The monitor's loop replaces one immutable `FleetSnapshot` each tick; the collector reads
whichever snapshot is current when Prometheus scrapes (the HTTP server runs in its own
thread, so it never sees a half-built one). Per-agent completed/failed counts come from
the coordinator's projection, i.e. from the whole store: true counters across monitor
restarts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.heartbeat import Heartbeat
from whoosh_shared.contract.queries import AgentView, FleetStats


@dataclass(frozen=True)
class FleetSnapshot:
    stats: FleetStats | None = None
    agents: tuple[AgentView, ...] = ()
    healthy: dict[str, bool] = field(default_factory=dict)  # the monitor's own verdicts
    live: tuple[Heartbeat, ...] = ()  # the last heartbeat of each live executor
    failure_ratio: dict[str, float] = field(default_factory=dict)
    response_time: dict[str, float] = field(default_factory=dict)
    alerts_firing: dict[tuple[str, str], int] = field(default_factory=dict)
    heartbeats: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)  # scope -> share used


class FleetCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = FleetSnapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield from self._tasks(snap)
        yield from self._agents(snap)
        yield from self._executors(snap)
        yield from self._gpus(snap)
        firing = GaugeMetricFamily(
            m.ALERTS_FIRING, "Alerts firing now", labels=["alertname", "severity"]
        )
        for (name, severity), count in sorted(snap.alerts_firing.items()):
            firing.add_metric([name, severity], count)
        yield firing
        budgets = GaugeMetricFamily(
            m.BUDGET_USED_RATIO, "Share of a budget used (tokens or USD)", labels=["scope"]
        )
        for scope, share in sorted(snap.budgets.items()):
            budgets.add_metric([scope], share)
        yield budgets
        beats = CounterMetricFamily(
            m.HEARTBEATS.removesuffix("_total"), "Heartbeats accepted since the monitor started"
        )
        beats.add_metric([], snap.heartbeats)
        yield beats
        rejected = CounterMetricFamily(
            m.HEARTBEATS_REJECTED.removesuffix("_total"),
            "Heartbeats refused (malformed, or sent for another executor)",
            labels=["reason"],
        )
        for reason in ("malformed", "wrong_subject"):
            rejected.add_metric([reason], snap.rejected.get(reason, 0))
        yield rejected

    @staticmethod
    def _tasks(snap: FleetSnapshot) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(m.TASKS, "Tasks in the store by status", labels=["status"])
        queue = GaugeMetricFamily(m.QUEUE_DEPTH, "Tasks waiting for an agent")
        if snap.stats is not None:
            for status in TaskStatus:
                tasks.add_metric([status.value], snap.stats.tasks_by_status.get(status.value, 0))
            queue.add_metric([], snap.stats.tasks_by_status.get(TaskStatus.QUEUED.value, 0))
        yield tasks
        yield queue

    @staticmethod
    def _agents(snap: FleetSnapshot) -> Iterator[Metric]:
        labels = ["agent", "type"]
        healthy = GaugeMetricFamily(m.AGENT_HEALTHY, "1 while the agent is healthy", labels=labels)
        enabled = GaugeMetricFamily(m.AGENT_ENABLED, "1 while the agent is enabled", labels=labels)
        reachable = GaugeMetricFamily(
            m.AGENT_REACHABLE, "1 unless the last inventory probe found it down", labels=labels
        )
        in_flight = GaugeMetricFamily(m.AGENT_IN_FLIGHT, "Tasks the agent holds", labels=labels)
        limit = GaugeMetricFamily(
            m.AGENT_MAX_CONCURRENT, "Tasks the agent may hold at once", labels=labels
        )
        completed = CounterMetricFamily(
            m.AGENT_COMPLETED.removesuffix("_total"), "Tasks completed (store)", labels=labels
        )
        failed = CounterMetricFamily(
            m.AGENT_FAILED.removesuffix("_total"), "Attempts failed (store)", labels=labels
        )
        decode = GaugeMetricFamily(
            m.AGENT_DECODE_TPS, "Measured generation speed", labels=["agent", "model"]
        )
        prefill = GaugeMetricFamily(
            m.AGENT_PREFILL_TPS, "Measured prompt reading speed", labels=["agent", "model"]
        )
        response = GaugeMetricFamily(
            m.AGENT_RESPONSE_TIME, "Mean duration of recent completed attempts", labels=["agent"]
        )
        failure = GaugeMetricFamily(
            m.AGENT_FAILURE_RATIO, "Share of recent attempts that failed", labels=["agent"]
        )
        target_rt = GaugeMetricFamily(
            m.AGENT_TARGET_RESPONSE_TIME,
            "performance_targets.max_response_time of the agent",
            labels=["agent"],
        )
        target_tps = GaugeMetricFamily(
            m.AGENT_TARGET_MIN_TPS, "performance_targets.min_tps of the agent", labels=["agent"]
        )
        for agent in snap.agents:
            spec = agent.spec
            key = [spec.name, spec.type.value]
            is_healthy = snap.healthy.get(spec.name, agent.healthy) and agent.healthy
            healthy.add_metric(key, 1.0 if is_healthy else 0.0)
            enabled.add_metric(key, 1.0 if agent.enabled else 0.0)
            reachable.add_metric(key, 1.0 if agent.reachable else 0.0)
            in_flight.add_metric(key, agent.load)
            limit.add_metric(key, spec.max_concurrent)
            completed.add_metric(key, agent.completed)
            failed.add_metric(key, agent.failed)
            for model, speed in sorted(agent.speeds.items()):
                decode.add_metric([spec.name, model], speed.decode_tps)
                prefill.add_metric([spec.name, model], speed.prefill_tps)
            if spec.name in snap.response_time:
                response.add_metric([spec.name], snap.response_time[spec.name])
            if spec.name in snap.failure_ratio:
                failure.add_metric([spec.name], snap.failure_ratio[spec.name])
            targets = spec.performance_targets
            if targets.max_response_time is not None:
                target_rt.add_metric([spec.name], targets.max_response_time)
            if targets.min_tps is not None:
                target_tps.add_metric([spec.name], targets.min_tps)
        yield from (healthy, enabled, reachable, in_flight, limit, completed, failed)
        yield from (decode, prefill, response, failure, target_rt, target_tps)

    @staticmethod
    def _executors(snap: FleetSnapshot) -> Iterator[Metric]:
        executors = GaugeMetricFamily(
            m.EXECUTORS, "Live executors serving each agent type", labels=["type"]
        )
        counts: dict[str, int] = {}
        for beat in snap.live:
            for kind in beat.agent_types:
                counts[kind.value] = counts.get(kind.value, 0) + 1
        for kind, count in sorted(counts.items()):
            executors.add_metric([kind], count)
        yield executors
        running = GaugeMetricFamily(
            m.EXECUTOR_RUNNING,
            "Attempts running on each live executor",
            labels=["executor", "host"],
        )
        cpu = GaugeMetricFamily(m.HOST_CPU, "Host CPU use (0..1)", labels=["host"])
        used = GaugeMetricFamily(m.HOST_MEMORY_USED, "Host memory in use", labels=["host"])
        total = GaugeMetricFamily(m.HOST_MEMORY_TOTAL, "Host memory", labels=["host"])
        pool_used = GaugeMetricFamily(
            m.SSH_POOL_IN_USE, "SSH channels in use to the host", labels=["target"]
        )
        pool_cap = GaugeMetricFamily(
            m.SSH_POOL_CAPACITY, "SSH channels the executors may open to it", labels=["target"]
        )
        hosts = {}
        pools: dict[str, list[int]] = {}
        for beat in sorted(snap.live, key=lambda b: b.sent_at):
            running.add_metric([beat.executor_id, beat.host.hostname], len(beat.running))
            hosts[beat.host.hostname] = beat.host  # the latest reading of each host
            for pool in beat.ssh_pools:
                sums = pools.setdefault(pool.target, [0, 0])
                sums[0] += pool.in_use
                sums[1] += pool.capacity
        for name, host in sorted(hosts.items()):
            cpu.add_metric([name], host.cpu_ratio)
            used.add_metric([name], host.memory_used_bytes)
            total.add_metric([name], host.memory_total_bytes)
        for target, (in_use, capacity) in sorted(pools.items()):
            pool_used.add_metric([target], in_use)
            pool_cap.add_metric([target], capacity)
        yield from (running, cpu, used, total, pool_used, pool_cap)

    @staticmethod
    def _gpus(snap: FleetSnapshot) -> Iterator[Metric]:
        labels = list(m.GPU_LABELS)
        families = {
            "utilization_ratio": GaugeMetricFamily(
                m.GPU_UTILIZATION, "GPU utilization (0..1)", labels=labels
            ),
            "memory_used_bytes": GaugeMetricFamily(
                m.GPU_MEMORY_USED, "GPU framebuffer memory in use", labels=labels
            ),
            "memory_total_bytes": GaugeMetricFamily(
                m.GPU_MEMORY_TOTAL, "GPU framebuffer memory", labels=labels
            ),
            "memory_reserved_bytes": GaugeMetricFamily(
                m.GPU_MEMORY_RESERVED,
                "GPU framebuffer memory the driver reserves (not counted as used)",
                labels=labels,
            ),
            "temperature_celsius": GaugeMetricFamily(
                m.GPU_TEMPERATURE, "GPU temperature", labels=labels
            ),
            "power_watts": GaugeMetricFamily(m.GPU_POWER, "GPU power draw", labels=labels),
            "power_limit_watts": GaugeMetricFamily(
                m.GPU_POWER_LIMIT, "GPU enforced power limit", labels=labels
            ),
        }
        seen: dict[tuple[str, str], object] = {}
        for beat in sorted(snap.live, key=lambda b: b.sent_at):
            for gpu in beat.host.gpus:  # executors sharing a host report the same GPUs
                seen[(beat.host.hostname, gpu.uuid)] = (beat.host.hostname, gpu)
        for hostname, gpu in seen.values():  # type: ignore[misc]
            key = [str(gpu.index), gpu.uuid, gpu.name, hostname]
            for attribute, family in families.items():
                value = getattr(gpu, attribute)
                if value is not None:
                    family.add_metric(key, value)
        yield from families.values()
