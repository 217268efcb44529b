"""/metrics content: per-task metrics from events and fleet gauges from a snapshot, read back
with Prometheus' own text parser."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from monitor.beats import beat, gpu, host
from monitor.clock import FakeClock
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from whoosh_monitor.agent_window import AgentWindow
from whoosh_monitor.event_metrics import EventMetrics
from whoosh_monitor.fleet_metrics import FleetCollector, FleetSnapshot
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract.agents import AgentSpec, PerformanceTargets
from whoosh_shared.contract.commands import RetryPolicy, Usage
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.events import (
    EventData,
    EventEnvelope,
    TaskAssigned,
    TaskAttemptFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskSubmitted,
)
from whoosh_shared.contract.heartbeat import SshPoolReading
from whoosh_shared.contract.inventory import SpeedStats
from whoosh_shared.contract.queries import AgentView, FleetStats

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class Events:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.window = AgentWindow(FakeClock(), min_samples=1)
        self.resolved: list[UUID] = []
        self.metrics = EventMetrics(
            self.registry, self.window, {"llm": "llama3.2:1b"}.get, self._resolve
        )
        self.version = 0

    async def _resolve(self, task_id: UUID) -> tuple[str | None, str | None]:
        self.resolved.append(task_id)
        return "late", None

    async def send(self, task_id: UUID, payload: EventData, envelope_id: int | None = None) -> None:
        self.version += 1
        envelope = EventEnvelope(
            notification_id=envelope_id or self.version,
            aggregate_type="task",
            aggregate_id=task_id,
            version=envelope_id or self.version,
            type=type(payload).__name__,
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            data=payload.model_dump(mode="json"),
        )
        await self.metrics.handle(envelope.model_dump_json().encode())


def submitted(model: str | None = None) -> TaskSubmitted:
    return TaskSubmitted(prompt="p", priority=5, timeout_s=60, retry=RetryPolicy(), model=model)


async def test_completed_tasks_feed_histograms_and_token_counters_by_agent_and_model() -> None:
    events = Events()
    task = uuid4()
    await events.send(task, submitted())
    await events.send(task, TaskAssigned(agent_id=uuid4(), agent_name="llm", attempt=1))
    usage = Usage(duration_s=42.0, tokens_in=120, tokens_out=300, time_to_first_token_s=0.8)
    await events.send(task, TaskCompleted(attempt=1, usage=usage))
    samples = scrape(events.registry)
    labels = {"agent": "llm", "model": "llama3.2:1b"}
    assert value(samples, f"{m.TASK_DURATION}_count", **labels) == 1
    assert value(samples, f"{m.TASK_DURATION}_sum", **labels) == 42.0
    assert value(samples, f"{m.TASK_DURATION}_bucket", **labels, le="30.0") == 0
    assert value(samples, f"{m.TASK_DURATION}_bucket", **labels, le="60.0") == 1
    assert value(samples, f"{m.TIME_TO_FIRST_TOKEN}_bucket", **labels, le="1.0") == 1
    assert value(samples, m.INPUT_TOKENS, **labels) == 120
    assert value(samples, m.OUTPUT_TOKENS, **labels) == 300
    assert value(samples, m.TASKS_FINISHED, agent="llm", status="completed") == 1
    assert events.window.response_time("llm") == 42.0


async def test_buckets_reach_minutes_and_stop_at_an_hour() -> None:
    assert max(m.DURATION_BUCKETS) == 3600 and 600 in m.DURATION_BUCKETS
    assert max(m.TTFT_BUCKETS) >= 120


async def test_failures_retries_and_cancellations_are_counted_per_agent() -> None:
    events = Events()
    task, queued = uuid4(), uuid4()
    await events.send(task, submitted(model="gemma3:1b"))
    await events.send(task, TaskAssigned(agent_id=uuid4(), agent_name="a", attempt=1))
    await events.send(task, TaskAttemptFailed(attempt=1, agent_name="a", reason="exit 1"))
    await events.send(task, TaskAssigned(agent_id=uuid4(), agent_name="b", attempt=2))
    await events.send(task, TaskFailed(attempt=2, reason="exit 1"))
    await events.send(queued, submitted())
    await events.send(queued, TaskCancelled(reason="no"))
    samples = scrape(events.registry)
    assert value(samples, m.TASK_RETRIES, agent="a") == 1
    assert value(samples, m.TASKS_FINISHED, agent="b", status="failed") == 1
    assert value(samples, m.TASKS_FINISHED, agent="", status="cancelled") == 1
    assert events.window.failure_ratio("a") == 1.0
    assert events.resolved == []  # everything was followed from the start


async def test_a_completion_of_a_task_never_seen_is_resolved_and_duplicates_count_once() -> None:
    events = Events()
    task = uuid4()
    await events.send(task, TaskCompleted(attempt=1, usage=Usage(duration_s=1)), envelope_id=7)
    await events.send(task, TaskCompleted(attempt=1, usage=Usage(duration_s=1)), envelope_id=7)
    samples = scrape(events.registry)
    assert events.resolved == [task]
    assert value(samples, m.TASKS_FINISHED, agent="late", status="completed") == 1


async def test_malformed_events_are_counted_not_raised() -> None:
    events = Events()
    await events.metrics.handle(b"{nonsense")
    await events.metrics.handle(b'{"notification_id": 1}')
    assert events.metrics.malformed == 2


def fleet_snapshot() -> FleetSnapshot:
    llm = AgentView(
        id=uuid4(),
        spec=AgentSpec(
            name="llm",
            type=AgentType.OLLAMA,
            endpoint="http://127.0.0.1:1",
            model="llama3.2:1b",
            max_concurrent=2,
            performance_targets=PerformanceTargets(min_tps=20, max_response_time=30),
        ),
        enabled=True,
        completed=7,
        failed=2,
        speeds={"llama3.2:1b": SpeedStats(samples=3, decode_tps=55.5, prefill_tps=900)},
    )
    shell = AgentView(id=uuid4(), spec=AgentSpec(name="shell", command=["sh"]), enabled=False)
    gpu_box = host(
        "gpu-box",
        cpu=0.25,
        gpus=[gpu(0, 0.9, memory_reserved_bytes=615 * 2**20), gpu(1, 0.1, power_watts=None)],
    )
    return FleetSnapshot(
        stats=FleetStats(
            tasks_by_status={"queued": 4, "running": 2, "completed": 7},
            agents=2,
            agents_enabled=1,
            in_flight=2,
            position=99,
        ),
        agents=(llm, shell),
        healthy={"llm": True, "shell": False},
        live=(
            beat("llm-1", types=(AgentType.OLLAMA, AgentType.OPENAI), host=gpu_box),
            beat(
                "cli-1",
                ssh_pools=[SshPoolReading(target="me@build:22", in_use=3, capacity=8)],
            ),
        ),
        failure_ratio={"llm": 0.25},
        response_time={"llm": 12.5},
        alerts_firing={("HostCpuHigh", "warning"): 2},
        heartbeats=10,
        rejected={"malformed": 1},
        budgets={"global": 0.85, "agent:llm": 0.0},
    )


def test_fleet_gauges_name_agents_hosts_and_gpus_with_dcgm_labels() -> None:
    registry = CollectorRegistry()
    collector = FleetCollector()
    registry.register(collector)
    collector.snapshot = fleet_snapshot()
    samples = scrape(registry)
    assert value(samples, m.TASKS, status="queued") == 4
    assert value(samples, m.TASKS, status="timed_out") == 0
    assert value(samples, m.QUEUE_DEPTH) == 4
    assert value(samples, m.AGENT_HEALTHY, agent="llm", type="ollama") == 1
    assert value(samples, m.AGENT_HEALTHY, agent="shell", type="cli") == 0
    assert value(samples, m.AGENT_ENABLED, agent="shell", type="cli") == 0
    assert value(samples, m.AGENT_COMPLETED, agent="llm", type="ollama") == 7
    assert value(samples, m.AGENT_FAILED, agent="llm", type="ollama") == 2
    assert value(samples, m.AGENT_MAX_CONCURRENT, agent="llm", type="ollama") == 2
    assert value(samples, m.AGENT_DECODE_TPS, agent="llm", model="llama3.2:1b") == 55.5
    assert value(samples, m.AGENT_TARGET_MIN_TPS, agent="llm") == 20
    assert value(samples, m.AGENT_TARGET_RESPONSE_TIME, agent="llm") == 30
    assert value(samples, m.AGENT_FAILURE_RATIO, agent="llm") == 0.25
    assert value(samples, m.AGENT_RESPONSE_TIME, agent="llm") == 12.5
    assert value(samples, m.EXECUTORS, type="ollama") == 1
    assert value(samples, m.EXECUTORS, type="cli") == 1
    assert value(samples, m.HOST_CPU, host="gpu-box") == 0.25
    assert value(samples, m.SSH_POOL_IN_USE, target="me@build:22") == 3
    assert value(samples, m.SSH_POOL_CAPACITY, target="me@build:22") == 8
    gpu0 = {
        "gpu": "0",
        "UUID": "GPU-00000000-0000-0000-0000-000000000000",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "gpu-box",
    }
    assert value(samples, m.GPU_UTILIZATION, **gpu0) == 0.9
    assert value(samples, m.GPU_MEMORY_USED, **gpu0) == 40 * 2**30
    assert value(samples, m.GPU_MEMORY_TOTAL, **gpu0) == 80 * 2**30
    assert value(samples, m.GPU_MEMORY_RESERVED, **gpu0) == 615 * 2**20  # NVML v2, as DCGM
    assert value(samples, m.GPU_TEMPERATURE, **gpu0) == 55.0
    assert value(samples, m.GPU_POWER, **gpu0) == 350.5
    assert value(samples, m.GPU_POWER_LIMIT, **gpu0) == 700.0
    gpu1 = {**gpu0, "gpu": "1", "UUID": "GPU-00000001-0000-0000-0000-000000000000"}
    assert value(samples, m.GPU_POWER, **gpu1) is None  # not supported: no sample, not 0
    assert value(samples, m.GPU_MEMORY_RESERVED, **gpu1) is None  # NVML v1: reserve unknown
    assert value(samples, m.ALERTS_FIRING, alertname="HostCpuHigh", severity="warning") == 2
    assert value(samples, m.HEARTBEATS) == 10
    assert value(samples, m.BUDGET_USED_RATIO, scope="global") == 0.85
    assert value(samples, m.HEARTBEATS_REJECTED, reason="malformed") == 1


def test_every_series_follows_the_naming_rules() -> None:
    events = Events()
    events.registry.register(collector := FleetCollector())
    collector.snapshot = fleet_snapshot()
    text = generate_latest(events.registry).decode()
    for family in text_string_to_metric_families(text):
        assert family.name.startswith(f"{m.PREFIX}_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        for sample in family.samples:
            assert not {"task", "task_id", "attempt"} & set(sample.labels), sample
