"""Helpers for end-to-end tests of the monitor: a monitor process on fast settings."""

from __future__ import annotations

import json
import os

from harness import ServiceProcess, eventually
from whoosh_shared.contract.queries import AgentView, GetAgent
from whoosh_shared.runtime.bus import Bus

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
WINDOW_S = 3.0  # the detection window the tests configure (the default is 5 s)
SLACK_S = 15.0  # what a loaded CI machine may add on top of it: these are no speed tests
FAST_HEARTBEATS = {"WHOOSH__EXECUTOR__HEARTBEAT_INTERVAL_S": "0.5"}


def monitor_env(**extra: str) -> dict[str, str]:
    return {
        **NO_CONFIG_FILE,
        "WHOOSH__MONITORING__HEALTH_CHECK_INTERVAL": str(WINDOW_S),
        "WHOOSH__MONITORING__REQUEUE_GRACE_S": "1",
        "WHOOSH__MONITORING__METRICS_PORT": "0",
        **extra,
    }


async def start_monitor(spawn, nats_url: str, **env: str) -> ServiceProcess:
    monitor: ServiceProcess = spawn("whoosh_monitor", "--nats", nats_url, env=monitor_env(**env))
    await eventually(lambda: "monitor ready" in monitor.output(), timeout=20, what="the monitor")
    return monitor


async def agent(bus: Bus, name: str) -> AgentView:
    reply = await bus.ask(GetAgent(name=name))
    assert reply.status == "ok", reply.reason
    return AgentView.model_validate(reply.result)


async def wait_health(bus: Bus, name: str, healthy: bool, timeout: float) -> AgentView:
    async def reached() -> AgentView | None:
        view = await agent(bus, name)
        return view if view.healthy is healthy else None

    state = "healthy" if healthy else "unhealthy"
    return await eventually(reached, timeout=timeout, what=f"agent {name} {state}")


def metrics_url(monitor: ServiceProcess) -> str:
    """The /metrics URL the monitor announced (it binds a free port in tests)."""
    for line in monitor.output().splitlines():
        if '"monitor ready"' in line:
            return json.loads(line)["metrics_url"]
    raise AssertionError("the monitor did not announce its metrics URL")
