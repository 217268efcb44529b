"""Heartbeats over a real nats-server: the executors' publisher and the monitor's intake."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

from harness import eventually
from monitor.beats import beat, host
from monitor.clock import FakeClock
from whoosh_monitor.health import FleetHealth
from whoosh_monitor.heartbeat_intake import HeartbeatIntake
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.config import MonitoringSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import Heartbeat, HostReading
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.heartbeat_publisher import HeartbeatPublisher, running_work


class FixedHost:
    def __init__(self) -> None:
        self.samples = 0

    def sample(self) -> HostReading:
        self.samples += 1
        return host("box", gpu_status="no GPU: NVML Shared Library Not Found")


class FakeRun:
    def __init__(self, agent: str) -> None:
        self.item = WorkItem(
            task_id=uuid4(),
            attempt=2,
            agent=AgentSpec(name=agent, command=["cat"]),
            prompt="p",
            timeout_s=10,
        )


def intake() -> tuple[HeartbeatIntake, FleetHealth]:
    health = FleetHealth(MonitoringSettings(), FakeClock())
    return HeartbeatIntake(health.heartbeat), health


async def test_the_publisher_beats_at_once_and_then_every_interval(bus: Bus) -> None:
    received: list[tuple[str, Heartbeat]] = []

    async def on_beat(msg) -> None:
        received.append((msg.subject, Heartbeat.model_validate_json(msg.data)))

    sub = await bus.nc.subscribe(subjects.HEARTBEAT_WILDCARD, cb=on_beat)
    runs = [FakeRun("shell")]
    publisher = HeartbeatPublisher(
        bus.nc,
        "cli.box.42",  # dots cannot travel in one subject token
        [AgentType.CLI],
        0.05,
        running=lambda: running_work(runs),
        max_parallel=4,
        host=FixedHost(),
    )
    publisher.start()
    try:
        await eventually(lambda: len(received) >= 3, timeout=10, what="three heartbeats")
    finally:
        await publisher.stop()
        await sub.unsubscribe()
    subject, first = received[0]
    assert subject == "whoosh.heartbeat.cli_box_42"
    assert first.executor_id == "cli.box.42"
    assert [(r.task_id, r.attempt, r.agent) for r in first.running] == [
        (runs[0].item.task_id, 2, "shell")
    ]
    assert first.host.gpu_status == "no GPU: NVML Shared Library Not Found"
    assert first.max_parallel == 4

    mine, health = intake()
    assert mine.handle(subject, received[0][1].model_dump_json().encode()) is not None
    assert [s.executor_id for s in health.live_executors()] == ["cli.box.42"]


async def test_a_publisher_whose_readings_fail_keeps_beating_later(bus: Bus) -> None:
    class Flaky(FixedHost):
        def sample(self) -> HostReading:
            self.samples += 1
            if self.samples == 1:
                raise OSError("cannot read /proc")
            return super().sample()

    got: list[bytes] = []

    async def on_beat(msg) -> None:
        got.append(msg.data)

    sub = await bus.nc.subscribe(subjects.heartbeat("flaky"), cb=on_beat)
    publisher = HeartbeatPublisher(
        bus.nc, "flaky", [AgentType.CLI], 0.05, running=list, host=Flaky()
    )
    publisher.start()
    try:
        await eventually(lambda: got, timeout=10, what="a heartbeat after a failed reading")
    finally:
        await publisher.stop()
        await sub.unsubscribe()
    await asyncio.sleep(0)


def test_malformed_heartbeats_are_counted_and_dropped() -> None:
    mine, health = intake()
    assert mine.handle("whoosh.heartbeat.x", b"not json") is None
    assert mine.handle("whoosh.heartbeat.x", b'{"executor_id": "x"}') is None
    bad_types = json.loads(beat("x").model_dump_json())
    bad_types["agent_types"] = ["fortran"]
    assert mine.handle("whoosh.heartbeat.x", json.dumps(bad_types).encode()) is None
    negative = json.loads(beat("x").model_dump_json())
    negative["host"]["cpu_ratio"] = -1
    assert mine.handle("whoosh.heartbeat.x", json.dumps(negative).encode()) is None
    assert mine.rejected == {"malformed": 4}
    assert health.executors == {}


def test_a_heartbeat_for_another_executor_than_its_subject_is_refused() -> None:
    mine, health = intake()
    spoof = beat("cli-1").model_dump_json().encode()
    assert mine.handle("whoosh.heartbeat.cli-2", spoof) is None
    assert mine.rejected == {"wrong_subject": 1}
    assert health.executors == {}


def test_an_unknown_executor_is_welcomed_once() -> None:
    mine, health = intake()
    payload = beat("new-one").model_dump_json().encode()
    assert mine.handle("whoosh.heartbeat.new-one", payload) is not None
    assert mine.handle("whoosh.heartbeat.new-one", payload) is not None
    assert mine.received == 2
    assert list(health.executors) == ["new-one"]
