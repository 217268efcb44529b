"""What the alert rules see: one reading per metric and labelled series, from the latest
heartbeats, the coordinator's agents and stats, and each agent's recent attempts. Pure.

Units are the rules' (see whoosh_shared.contract.alerts): usage in percent, times in seconds,
target metrics as ratios to the agent's own performance_targets.
"""

from __future__ import annotations

from collections.abc import Iterable

from whoosh_shared.contract.alerts import AlertMetric
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.heartbeat import Heartbeat
from whoosh_shared.contract.inventory import model_key
from whoosh_shared.contract.queries import AgentView, FleetStats

from whoosh_monitor.agent_window import AgentWindow
from whoosh_monitor.alert_rules import Reading, labels_of

M = AlertMetric


def collect(
    live: Iterable[Heartbeat],
    agents: Iterable[AgentView],
    window: AgentWindow,
    stats: FleetStats | None,
) -> list[Reading]:
    readings = list(_hosts(live))
    for agent in agents:
        readings.extend(_agent(agent, window))
    if stats is not None:
        queued = stats.tasks_by_status.get(TaskStatus.QUEUED.value, 0)
        readings.append(Reading(M.QUEUE_DEPTH, (), float(queued)))
    return readings


def _hosts(live: Iterable[Heartbeat]) -> Iterable[Reading]:
    hosts = {}
    gpus = {}
    pools: dict[str, list[int]] = {}
    for beat in sorted(live, key=lambda b: b.sent_at):
        hosts[beat.host.hostname] = beat.host
        for gpu in beat.host.gpus:
            gpus[(beat.host.hostname, gpu.uuid)] = (beat.host.hostname, gpu)
        for pool in beat.ssh_pools:
            sums = pools.setdefault(pool.target, [0, 0])
            sums[0] += pool.in_use
            sums[1] += pool.capacity
    for name, host in hosts.items():
        yield Reading(M.CPU_USAGE, labels_of(host=name), 100 * host.cpu_ratio)
        if host.memory_total_bytes:
            used = 100 * host.memory_used_bytes / host.memory_total_bytes
            yield Reading(M.MEMORY_USAGE, labels_of(host=name), used)
    for hostname, gpu in gpus.values():
        labels = labels_of(host=hostname, gpu=str(gpu.index), uuid=gpu.uuid)
        if gpu.utilization_ratio is not None:
            yield Reading(M.GPU_USAGE, labels, 100 * gpu.utilization_ratio)
        if gpu.memory_used_bytes is not None and gpu.memory_total_bytes:
            used = 100 * gpu.memory_used_bytes / gpu.memory_total_bytes
            yield Reading(M.GPU_MEMORY_USAGE, labels, used)
        if gpu.temperature_celsius is not None:
            yield Reading(M.GPU_TEMPERATURE, labels, gpu.temperature_celsius)
    for target, (in_use, capacity) in pools.items():
        if capacity:
            yield Reading(M.SSH_POOL_USAGE, labels_of(target=target), 100 * in_use / capacity)


def _agent(agent: AgentView, window: AgentWindow) -> Iterable[Reading]:
    name = agent.spec.name
    labels = labels_of(agent=name)
    yield Reading(M.AGENT_UNHEALTHY, labels, 0.0 if agent.healthy else 1.0)
    failure = window.failure_ratio(name)
    if failure is not None:
        yield Reading(M.AGENT_FAILURE_RATE, labels, 100 * failure)
    response = window.response_time(name)
    targets = agent.spec.performance_targets
    if response is not None:
        yield Reading(M.RESPONSE_TIME, labels, response)
        if targets.max_response_time:
            ratio = response / targets.max_response_time
            yield Reading(M.RESPONSE_TIME_OVER_TARGET, labels, ratio)
    if targets.min_tps and agent.spec.model:
        speed = agent.speeds.get(model_key(agent.spec.model))
        if speed is not None and speed.samples:
            ratio = speed.decode_tps / targets.min_tps
            yield Reading(M.TOKENS_PER_SECOND_UNDER_TARGET, labels, ratio)
