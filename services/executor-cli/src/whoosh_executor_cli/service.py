"""The executor process: bus wiring, the work consumer, cancellations, and an orderly stop.

Stopping is the delicate part. A stop (SIGTERM/SIGINT) must leave no task
half-reported: fetching stops, commands still running are killed and their
messages handed back (NAK) for another executor, and reports already being sent
get a short grace to be answered and acked. Whatever is still unanswered after
that stays unacked and is redelivered, never lost.

Beside the work, the executor answers connectivity tests of CLI agents (before they are
registered) and checks its remote agents' hosts periodically (`host_checks`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from faststream.nats.annotations import NatsMessage
from whoosh_shared.bus import Bus, ensure_streams
from whoosh_shared.config import ExecutorSettings
from whoosh_shared.enums import AgentType
from whoosh_shared.heartbeat import HeartbeatPublisher, SshPoolReading, running_work
from whoosh_shared.progress import ProgressPublisher
from whoosh_shared.running_attempts import STOP_EVENT_SUBJECTS as CANCELLATION_SUBJECTS
from whoosh_shared.running_attempts import StopCause, stop_for_event
from whoosh_shared.work_queue import WorkConsumer

from whoosh_executor_cli.attempt import AttemptHandler, ExecutorContext
from whoosh_executor_cli.host_checks import HostReporter, ProbeResponder
from whoosh_executor_cli.ssh_client import SshPool

log = logging.getLogger(__name__)
DURABLE_NAME = "executor-cli"

# How long a stop waits for reports in flight, beyond the kill grace of running commands.
REPORT_GRACE_S = 4.0


def default_executor_id() -> str:
    return f"cli-{socket.gethostname()}-{os.getpid()}"


class ExecutorService:
    """One executor process for CLI agents, run until `request_stop`."""

    def __init__(
        self,
        nats_url: str,
        settings: ExecutorSettings,
        executor_id: str,
        stream_replicas: int = 1,
    ) -> None:
        self.nats_url = nats_url
        self.settings = settings
        self.executor_id = executor_id
        self.stream_replicas = stream_replicas
        self.bus = Bus(nats_url, f"whoosh-executor-cli:{executor_id}")
        self.progress: ProgressPublisher | None = None
        self.ctx: ExecutorContext | None = None
        self._stop = asyncio.Event()
        self._declare_cancellation_subscribers()

    def request_stop(self) -> None:
        """Begin an orderly stop; asked again (a second Ctrl-C), stop waiting for reports."""
        if self._stop.is_set() and self.ctx is not None:
            log.warning("stopping now: unanswered reports are left for redelivery")
            self.ctx.abandon_reports.set()
        self._stop.set()

    async def run(self) -> None:
        await self.bus.start()
        try:
            await ensure_streams(self.bus.js, self.stream_replicas)  # create if missing only
            self.progress = ProgressPublisher(self.bus.nc)
            self.progress.start()
            self.ctx = ExecutorContext(
                bus=self.bus,
                executor_id=self.executor_id,
                settings=self.settings,
                progress=self.progress,
            )
            consumer = WorkConsumer(
                self.bus.js,
                self.settings,
                AttemptHandler(self.ctx).handle,
                durable=DURABLE_NAME,
                agent_type=AgentType.CLI,
            )
            await consumer.bind()
            fetching = asyncio.create_task(consumer.run(), name="fetch-work")
            responder = ProbeResponder(self.bus.nc)
            await responder.start()
            checking = asyncio.create_task(
                HostReporter(self.bus, self.settings).run(self._stop), name="host-checks"
            )
            heartbeats = self._heartbeats(self.ctx)
            heartbeats.start()
            log.info(
                "executor ready",
                extra={
                    "executor_id": self.executor_id,
                    "nats": self.nats_url,
                    "max_parallel": self.settings.max_parallel,
                },
            )
            stopped = asyncio.create_task(self._stop.wait())
            await asyncio.wait({fetching, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            failure = None
            if fetching.done() and not fetching.cancelled():
                failure = fetching.exception()  # the fetch loop died: stop cleanly, then say why
            checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)
            await responder.stop()
            await self._shutdown(consumer, fetching)
            await heartbeats.stop()
            if failure is not None:
                raise failure
        finally:
            await self.bus.close()
            log.info("executor stopped", extra={"executor_id": self.executor_id})

    async def _shutdown(self, consumer: WorkConsumer, fetching: asyncio.Task[None]) -> None:
        ctx = self.ctx
        assert ctx is not None
        running = len(ctx.running)
        log.info("stopping", extra={"running": running})
        ctx.stopping.set()
        consumer.stop()
        for run in ctx.running:
            run.stop(StopCause.SHUTDOWN, "executor stopping")
        await asyncio.gather(fetching, return_exceptions=True)
        draining = asyncio.create_task(consumer.drain())
        grace = self.settings.kill_grace_s + REPORT_GRACE_S
        done, _ = await asyncio.wait({draining}, timeout=grace)
        if not done:
            ctx.abandon_reports.set()
            await draining
        await consumer.close()
        await ctx.ssh.close()
        if self.progress is not None:
            await self.progress.close()
        try:
            await self.bus.nc.flush(timeout=2)
        except Exception as exc:  # acks already written stay buffered only if the bus is gone
            log.warning("could not flush the last acks: %s", exc)

    def _heartbeats(self, ctx: ExecutorContext) -> HeartbeatPublisher:
        """Tells the monitor this executor lives, what it runs, and its host's readings."""
        return HeartbeatPublisher(
            self.bus.nc,
            self.executor_id,
            [AgentType.CLI],
            self.settings.heartbeat_interval_s,
            running=lambda: running_work(ctx.running),
            max_parallel=self.settings.max_parallel,
            ssh_pools=lambda: ssh_pool_readings(ctx.ssh),
        )

    def _declare_cancellation_subscribers(self) -> None:
        """Core-NATS subscribers for TaskCancelled / TaskTimedOut (declared before start)."""

        async def on_task_event(msg: NatsMessage) -> None:
            if self.ctx is not None:
                stop_for_event(self.ctx.running, msg.body)

        for subject in CANCELLATION_SUBJECTS:
            self.bus.broker.subscriber(subject)(on_task_event)


def ssh_pool_readings(pool: SshPool) -> list[SshPoolReading]:
    """SSH channels in use per host against what the pool may open there (for the monitor's
    pool-saturation alert)."""
    readings = []
    for host_pool in getattr(pool, "_hosts", {}).values():
        capacity = host_pool.max_connections * host_pool.channels_per_connection
        in_use = sum(host_pool.snapshot().in_use)
        readings.append(
            SshPoolReading(target=host_pool.name or "ssh", in_use=in_use, capacity=capacity)
        )
    return readings
