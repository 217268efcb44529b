"""Publishing an executor's heartbeat (whoosh_shared.contract.heartbeat) every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

import nats.errors
from nats.aio.client import Client

from whoosh_shared.contract import subjects
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import (
    MAX_POOLS,
    MAX_RUNNING,
    Heartbeat,
    HostReading,
    RunningWork,
    SshPoolReading,
)
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.supervision import LoopHealth, supervise

log = logging.getLogger(__name__)


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
            from whoosh_shared.runtime.host_stats import SystemSampler  # psutil + NVML, lazily

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
