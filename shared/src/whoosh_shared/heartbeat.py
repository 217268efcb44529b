"""Executor heartbeats: what each executor publishes every few seconds, and the publisher.

Every executor publishes a `Heartbeat` on `whoosh.heartbeat.<executor id>` (core NATS:
ephemeral, nothing stored) every `executor.heartbeat_interval_s`: which agent types it
serves, the attempts it runs now, and its host's readings (CPU, memory, GPUs, SSH
channel pools). The monitor turns their presence or absence into agent health and
their readings into metrics and alerts. Units are base units: ratios 0..1, bytes,
seconds, watts, degrees Celsius.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import nats.errors
from nats.aio.client import Client
from pydantic import Field

from whoosh_shared import subjects
from whoosh_shared.agents import AgentName, Strict
from whoosh_shared.enums import AgentType
from whoosh_shared.supervision import LoopHealth, supervise
from whoosh_shared.work import WorkItem

log = logging.getLogger(__name__)

MAX_RUNNING = 4096
MAX_GPUS = 64
MAX_POOLS = 256


class GpuReading(Strict):
    """One GPU, as NVML reports it (units converted; None where the GPU does not say)."""

    index: int = Field(ge=0)
    uuid: str = Field(max_length=100)
    name: str = Field(max_length=200)
    utilization_ratio: float | None = Field(default=None, ge=0, le=1)
    memory_used_bytes: int | None = Field(default=None, ge=0)
    memory_total_bytes: int | None = Field(default=None, ge=0)
    memory_reserved_bytes: int | None = Field(
        default=None, ge=0, description="held by the driver, not in used (NVML v2 only)"
    )
    temperature_celsius: float | None = Field(default=None, ge=-100, le=200)
    power_watts: float | None = Field(default=None, ge=0)
    power_limit_watts: float | None = Field(default=None, ge=0)


class SshPoolReading(Strict):
    """The SSH channels one executor holds to one host: in use against what it may open."""

    target: str = Field(min_length=1, max_length=300, description="user@host:port")
    in_use: int = Field(ge=0)
    capacity: int = Field(ge=1)


class HostReading(Strict):
    hostname: str = Field(min_length=1, max_length=253)
    cpu_ratio: float = Field(ge=0, le=1)
    memory_used_bytes: int = Field(ge=0)
    memory_total_bytes: int = Field(ge=0)
    gpus: list[GpuReading] = Field(default_factory=list, max_length=MAX_GPUS)
    gpu_status: str | None = Field(
        default=None, max_length=300, description="why there are no GPU readings"
    )


class RunningWork(Strict):
    task_id: UUID
    attempt: int = Field(ge=1)
    agent: AgentName


class Heartbeat(Strict):
    executor_id: str = Field(min_length=1, max_length=200)
    agent_types: list[AgentType] = Field(min_length=1, description="agent types it serves")
    interval_s: float = Field(gt=0, le=3600, description="the next one comes this much later")
    sent_at: datetime
    max_parallel: int = Field(default=1, ge=1)
    running: list[RunningWork] = Field(default_factory=list, max_length=MAX_RUNNING)
    host: HostReading
    ssh_pools: list[SshPoolReading] = Field(default_factory=list, max_length=MAX_POOLS)


class HasItem(Protocol):
    @property
    def item(self) -> WorkItem: ...


class HostSampler(Protocol):
    def sample(self) -> HostReading: ...


def running_work(runs: Iterable[HasItem]) -> list[RunningWork]:
    """What an executor's registry of running attempts holds, as heartbeat entries."""
    return [
        RunningWork(task_id=run.item.task_id, attempt=run.item.attempt, agent=run.item.agent.name)
        for run in runs
    ][:MAX_RUNNING]


class HeartbeatPublisher:
    """Publishes a heartbeat at once and then every `interval_s` until `stop()`.

    A publish that fails (NATS reconnecting) is simply the heartbeat that did not come.
    Anything else that fails (a reading, a bug) ends the loop for its supervisor to log
    at ERROR and restart: the loop runs under `supervise` as "heartbeat" (in the
    process's `health`, when given) and is marked healthy by each heartbeat sent."""

    def __init__(
        self,
        nc: Client,
        executor_id: str,
        agent_types: list[AgentType],
        interval_s: float,
        running: Callable[[], list[RunningWork]],
        max_parallel: int = 1,
        ssh_pools: Callable[[], list[SshPoolReading]] | None = None,
        host: HostSampler | None = None,
        health: LoopHealth | None = None,
    ) -> None:
        self.nc = nc
        self.executor_id = executor_id
        self.agent_types = agent_types
        self.interval_s = interval_s
        self.running = running
        self.max_parallel = max_parallel
        self.ssh_pools = ssh_pools
        self.subject = subjects.heartbeat(executor_id)
        self._host = host
        self.health = health or LoopHealth()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    def start(self) -> None:
        run = supervise("heartbeat", self._run, self.health)
        self._task = asyncio.create_task(run, name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        if self._host is None:
            from whoosh_shared.host_stats import SystemSampler  # psutil + NVML, lazily

            self._host = SystemSampler()
        while True:
            try:
                await self.publish_once()
            except (nats.errors.Error, OSError) as exc:  # NATS away: the next beat tries again
                log.debug("heartbeat not sent: %s", exc)
            else:
                self.health.up("heartbeat")
            await asyncio.sleep(self.interval_s)

    async def publish_once(self) -> Heartbeat:
        assert self._host is not None
        host = await asyncio.to_thread(self._host.sample)  # NVML may block on a sick GPU
        pools: list[SshPoolReading] = []
        if self.ssh_pools is not None:
            with contextlib.suppress(Exception):
                pools = self.ssh_pools()[:MAX_POOLS]
        beat = Heartbeat(
            executor_id=self.executor_id,
            agent_types=self.agent_types,
            interval_s=self.interval_s,
            sent_at=datetime.now(UTC),
            max_parallel=self.max_parallel,
            running=self.running(),
            host=host,
            ssh_pools=pools,
        )
        await self.nc.publish(self.subject, beat.model_dump_json().encode())
        self.sent += 1
        return beat


def hostname() -> str:
    return socket.gethostname() or "localhost"
