"""Alert rules end to end: a real coordinator and monitor, synthetic heartbeats crossing a
threshold, alerts raised and resolved as events (once each), POSTed to a loopback
webhook, listed by `whoosh alerts`; a hanging webhook never holds evaluation up; a bad
rule keeps the monitor from starting, with its line named."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import REPO, ServiceProcess, eventually, stream_envelopes, wait_for_coordinator
from monitor.beats import host
from monitor.webhook_receiver import WebhookReceiver
from system.monitor_stack import NO_CONFIG_FILE
from whoosh_shared.contract import subjects
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import Heartbeat
from whoosh_shared.contract.queries import AlertList, ListAlerts
from whoosh_shared.runtime.bus import Bus

RULES = """
monitoring:
  health_check_interval: 3
  metrics_port: 0
  evaluation_interval_s: 0.2
  default_alert_rules: false
  alert_rules:
    - name: HostCpuHigh
      metric: cpu_usage
      threshold: 85
      for: 1s
      severity: critical
  alert_webhook:
    url: {url}
    timeout_s: 0.5
    retries: 1
    backoff_s: 0.1
"""


class SyntheticExecutor:
    """Heartbeats of an executor that does not exist, with the CPU reading the test sets."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.cpu = 0.1
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            beat = Heartbeat(
                executor_id="synthetic",
                agent_types=[AgentType.CLI],
                interval_s=0.2,
                sent_at=datetime.now(UTC),
                host=host("synthetic-host", cpu=self.cpu),
            )
            await self.bus.nc.publish(
                subjects.heartbeat("synthetic"), beat.model_dump_json().encode()
            )
            await asyncio.sleep(0.2)

    def __enter__(self) -> SyntheticExecutor:
        self._task = asyncio.create_task(self._beat())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
async def monitored(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, tmp_path: Path, receiver: WebhookReceiver
) -> AsyncIterator[ServiceProcess]:
    config = tmp_path / "whoosh.yaml"
    config.write_text(RULES.format(url=receiver.url))
    spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )
    await wait_for_coordinator(bus)
    monitor: ServiceProcess = spawn(
        "whoosh_monitor", "--nats", nats_url, env={"WHOOSH_CONFIG": str(config)}
    )
    await eventually(lambda: "monitor ready" in monitor.output(), timeout=20, what="the monitor")
    yield monitor


async def alert_events(bus: Bus) -> list[str]:
    return [e.type for e in await stream_envelopes(bus.js) if e.aggregate_type == "alert"]


def whoosh(*args: str, nats_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whoosh_cli", *args, "--nats", nats_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**NO_CONFIG_FILE, "PATH": "/usr/bin:/bin"},
    )


async def test_a_threshold_held_for_its_duration_raises_once_and_clearing_it_resolves(
    bus: Bus, nats_url: str, monitored: ServiceProcess, receiver: WebhookReceiver
) -> None:
    with SyntheticExecutor(bus) as executor:
        executor.cpu = 0.97
        await eventually(
            lambda: [r["status"] for r in receiver.received] == ["firing"],
            timeout=20,
            what="the firing notification",
        )
        firing = AlertList.model_validate((await bus.ask(ListAlerts(status="firing"))).result)
        (alert,) = firing.alerts
        assert alert.fingerprint == "HostCpuHigh{host=synthetic-host}"
        assert (alert.severity.value, alert.value, alert.threshold) == ("critical", 97.0, 85.0)
        listing = await asyncio.to_thread(whoosh, "alerts", nats_url=nats_url)
        assert listing.returncode == 0, listing.stderr
        assert "firing" in listing.stdout and "HostCpuHigh{host=synthetic-host}" in listing.stdout
        await asyncio.sleep(1.0)  # still above: nothing more is raised or sent
        assert await alert_events(bus) == ["AlertCreated", "AlertRaised"]

        executor.cpu = 0.2
        await eventually(
            lambda: [r["status"] for r in receiver.received] == ["firing", "resolved"],
            timeout=20,
            what="the resolved notification",
        )
    assert await alert_events(bus) == ["AlertCreated", "AlertRaised", "AlertResolved"]
    firing_note, resolved_note = receiver.received
    assert firing_note["alert"]["rule"] == "HostCpuHigh"
    assert firing_note["alert"]["labels"] == {"host": "synthetic-host"}
    assert firing_note["alert"]["summary"] == "cpu_usage 97 > 85 (host=synthetic-host)"
    assert resolved_note["alert"]["reason"] == "condition cleared"
    recent = await asyncio.to_thread(whoosh, "alerts", nats_url=nats_url)
    assert "resolved" in recent.stdout
    none_firing = await asyncio.to_thread(whoosh, "alerts", "--firing", nats_url=nats_url)
    assert none_firing.stdout.strip() == "no alerts firing"


async def test_a_hanging_webhook_does_not_hold_up_alerts(
    bus: Bus, monitored: ServiceProcess, receiver: WebhookReceiver
) -> None:
    receiver.answers = ["hang"] * 50
    receiver.hang_s = 3
    with SyntheticExecutor(bus) as executor:
        executor.cpu = 0.99
        await eventually(
            lambda: alert_events(bus), timeout=20, what="the alert raised in the store"
        )
        executor.cpu = 0.1
        await eventually(
            lambda: _resolved(bus), timeout=20, what="the alert resolved while the webhook hangs"
        )
    assert receiver.received == []
    await eventually(
        lambda: "webhook not reached" in monitored.output(), timeout=20, what="one warning"
    )
    assert monitored.output().count("webhook not reached") == 1  # not once per alert


async def _resolved(bus: Bus) -> bool:
    return "AlertResolved" in await alert_events(bus)


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ("    - {name: X, metric: gpu_usgae, threshold: 1}\n", "line 3"),
        ("    - name: X\n      metric: cpu_usage\n      threshold: 101\n", "threshold 101"),
    ],
)
def test_a_bad_rule_keeps_the_monitor_from_starting(tmp_path: Path, rules: str, named: str) -> None:
    config = tmp_path / "whoosh.yaml"
    config.write_text("monitoring:\n  alert_rules:\n" + rules)
    result = subprocess.run(
        [sys.executable, "-m", "whoosh_monitor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{config}: invalid configuration" in result.stderr
    assert named in result.stderr


def test_a_taken_metrics_port_is_said_at_start(tmp_path: Path) -> None:
    with contextlib.closing(__import__("socket").socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "whoosh_monitor", "--nats", "nats://127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**NO_CONFIG_FILE, "WHOOSH__MONITORING__METRICS_PORT": str(port), "PATH": "/bin"},
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr


async def test_a_threads_escalation_alert_reaches_the_webhook(
    bus: Bus, monitored: ServiceProcess, receiver: WebhookReceiver
) -> None:
    """The coordinator raises a thread's `notify` alert itself; the monitor sends it on."""
    from uuid import UUID

    from harness import get_task
    from whoosh_shared.contract import commands as c
    from whoosh_shared.contract import threads as t
    from whoosh_shared.contract.agents import AgentSpec

    reply = await bus.send(c.RegisterAgent(spec=AgentSpec(name="voter", command=["cat"])))
    assert reply.accepted, reply.reason
    rule = t.EscalationRule(
        name="format-broken", when={"unparseable_over": 0}, do=[t.Action(kind="notify")]
    )
    started = await bus.send(
        t.StartThread(topic="q", participants=[t.Participant(agent="voter")], escalation=[rule])
    )
    assert started.accepted, started.reason
    view = t.ThreadView.model_validate(
        (await bus.ask(t.GetThread(thread_id=UUID(started.ids["thread_id"])))).result
    )
    task_id = view.rounds[0].tasks["voter"]
    await eventually(lambda: _assigned(bus, task_id), timeout=10, what="the task assigned")
    attempt = (await get_task(bus, task_id)).attempt
    # acting as the executor: an answer with no ANSWER line
    await bus.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x"))
    await bus.send(c.CompleteTask(task_id=task_id, attempt=attempt, output="no idea"))
    note = await eventually(
        lambda: next(
            (r for r in receiver.received if r["alert"]["rule"] == "ThreadEscalated"), None
        ),
        timeout=20,
        what="the escalation's notification",
    )
    assert note["status"] == "firing"
    assert note["alert"]["labels"] == {"thread": started.ids["thread_id"], "rule": "format-broken"}


async def _assigned(bus: Bus, task_id) -> bool:
    from harness import get_task

    return (await get_task(bus, task_id)).attempt > 0
