"""What the alert rules read from heartbeats, agents, recent attempts and stats."""

from __future__ import annotations

from uuid import uuid4

from monitor.beats import beat, gpu, host
from monitor.clock import FakeClock
from whoosh_monitor.agent_window import AgentWindow
from whoosh_monitor.alert_rules import Reading, labels_of
from whoosh_monitor.readings import collect
from whoosh_shared.contract.agents import AgentSpec, PerformanceTargets
from whoosh_shared.contract.alerts import AlertMetric as M
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import SshPoolReading
from whoosh_shared.contract.inventory import SpeedStats
from whoosh_shared.contract.queries import AgentView, FleetStats


def test_readings_in_the_rules_units() -> None:
    window = AgentWindow(FakeClock(), min_samples=2)
    for duration in (40, 80):
        window.completed("llm", duration)
    window.failed("llm")
    llm = AgentView(
        id=uuid4(),
        spec=AgentSpec(
            name="llm",
            type=AgentType.OLLAMA,
            endpoint="http://127.0.0.1:1",
            model="llama3.2:1b",
            performance_targets=PerformanceTargets(min_tps=50, max_response_time=30),
        ),
        enabled=True,
        healthy=False,
        speeds={"llama3.2:1b": SpeedStats(samples=2, decode_tps=25)},
    )
    box = host("box", cpu=0.9, memory=0.5, gpus=[gpu(0, 0.97, temperature_celsius=88.0)])
    pools = [SshPoolReading(target="me@h:22", in_use=9, capacity=10)]
    stats = FleetStats(
        tasks_by_status={"queued": 7}, agents=1, agents_enabled=1, in_flight=0, position=1
    )
    found = collect([beat("x", host=box, ssh_pools=pools)], [llm], window, stats)
    by = {(r.metric, r.labels): r.value for r in found}
    g = labels_of(host="box", gpu="0", uuid="GPU-00000000-0000-0000-0000-000000000000")
    agent = labels_of(agent="llm")
    assert by[(M.CPU_USAGE, labels_of(host="box"))] == 90
    assert by[(M.MEMORY_USAGE, labels_of(host="box"))] == 50
    assert by[(M.GPU_USAGE, g)] == 97
    assert by[(M.GPU_MEMORY_USAGE, g)] == 50
    assert by[(M.GPU_TEMPERATURE, g)] == 88
    assert by[(M.SSH_POOL_USAGE, labels_of(target="me@h:22"))] == 90
    assert by[(M.QUEUE_DEPTH, ())] == 7
    assert by[(M.AGENT_UNHEALTHY, agent)] == 1
    assert round(by[(M.AGENT_FAILURE_RATE, agent)], 2) == 33.33
    assert by[(M.RESPONSE_TIME, agent)] == 60
    assert by[(M.RESPONSE_TIME_OVER_TARGET, agent)] == 2.0
    assert by[(M.TOKENS_PER_SECOND_UNDER_TARGET, agent)] == 0.5


def test_no_targets_no_samples_no_target_readings() -> None:
    shell = AgentView(id=uuid4(), spec=AgentSpec(name="sh", command=["sh"]), enabled=True)
    found = collect([], [shell], AgentWindow(FakeClock()), None)
    assert found == [Reading(M.AGENT_UNHEALTHY, labels_of(agent="sh"), 0.0)]
