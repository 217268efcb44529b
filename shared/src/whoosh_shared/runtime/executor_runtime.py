"""An executor process's runtime, the same on every executor: bus wiring, the durable work
consumers, cancellations, heartbeats, reporting an attempt, and an orderly stop.

Stopping is the delicate part. A stop (SIGTERM/SIGINT) must leave no task half-reported:
fetching stops, runs still going are stopped and their messages handed back (NAK) for
another executor, and reports already being sent get a short grace to be answered and
acked. Whatever is still unanswered after that stays unacked and is redelivered, never lost.

What is each executor's own: what a run is (a process group, an HTTP stream), which agent
types it serves (one durable consumer each), what it keeps beside the work (SSH
connections, an HTTP pool) and what it does alongside (probes, host checks). An executor
subclasses `ExecutorRuntime` and `ExecutorContext` for those. Log lines are written under
the executor's own logger names, so they read the same whichever code path wrote them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg

from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS, AttemptCommand
from whoosh_shared.contract.config import ExecutorSettings, WhooshConfig
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import SshPoolReading
from whoosh_shared.contract.limits import LimitSettings, head_and_tail, utf8_size
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.blob_store import BlobStore
from whoosh_shared.runtime.bus import Bus, ensure_streams, send_until_answered
from whoosh_shared.runtime.heartbeat_publisher import HeartbeatPublisher, running_work
from whoosh_shared.runtime.loop_reports import publish_loop_reports
from whoosh_shared.runtime.progress import ProgressPublisher
from whoosh_shared.runtime.reconnects import after_each_reconnect
from whoosh_shared.runtime.running_attempts import (
    STOP_EVENT_SUBJECTS,
    RunningAttempts,
    RunT,
    StopCause,
    recheck_runs,
    stop_for_event,
)
from whoosh_shared.runtime.supervision import LoopHealth, supervise
from whoosh_shared.runtime.work_message import ids, settle
from whoosh_shared.runtime.work_queue import MessageHandler, WorkConsumer

# How long a stop waits for reports in flight once the runs are stopped.
REPORT_GRACE_S = 4.0
INLINE_OUTPUT_BYTES = MAX_OUTPUT_CHARS  # what of an output rides in the report itself


def default_executor_id(prefix: str) -> str:
    """A name unique per process (`<prefix>-<host>-<pid>`), for when none is configured."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}"


@dataclass(kw_only=True)
class ExecutorContext(Generic[RunT]):
    """What every attempt on an executor shares; an executor adds what is its own."""

    bus: Bus
    executor_id: str
    settings: ExecutorSettings
    progress: ProgressPublisher
    running: RunningAttempts[RunT] = field(default_factory=RunningAttempts)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at shutdown: start nothing new; running work is stopped and redelivered."""
    abandon_reports: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when shutdown can wait no longer for unanswered reports."""
    limits: LimitSettings = field(default_factory=LimitSettings)
    """The installation's size policy (set by the runtime from whoosh.yaml)."""


async def store_output(ctx: ExecutorContext[Any], output: str) -> tuple[str, BlobRef | None]:
    """An output over what a report carries inline: cut to head and tail at
    limits.max_output_bytes, stored once in the blob store, and returned as (its head and
    tail that fit inline, its reference). If the store cannot take it, the inline part
    goes alone: a result is never held back for its output."""
    if utf8_size(output) <= INLINE_OUTPUT_BYTES:
        return output, None
    kept = head_and_tail(output, ctx.limits.max_output_bytes)
    inline = head_and_tail(kept, INLINE_OUTPUT_BYTES)
    try:
        return inline, await BlobStore(ctx.bus.js).put_text(kept)
    except Exception as exc:
        logging.getLogger(__name__).warning("output not stored, reported inline: %s", exc)
        return inline, None


async def report_and_ack(
    ctx: ExecutorContext[Any],
    msg: Msg,
    item: WorkItem,
    command: AttemptCommand,
    *,
    log: logging.Logger,
    **details: object,
) -> None:
    """Report an attempt's result until the coordinator answers, and only then ack its
    message (a crash before the answer leaves it to be redelivered). `details` (outcome,
    duration, ...) go into the "task finished" line, on the executor's own `log`."""
    reply = await send_until_answered(ctx.bus, command, ctx.abandon_reports)
    if reply is None:
        log.warning("report unanswered at shutdown; work will be redelivered", extra=ids(item))
        return
    await settle(msg.ack())
    log.info(
        "task finished",
        extra={
            **ids(item),
            "result": type(command).__name__,
            **details,
            "reply": reply.status if reply.accepted else f"rejected: {reply.reason}",
        },
    )


CtxT = TypeVar("CtxT", bound=ExecutorContext[Any])


class ExecutorRuntime(ABC, Generic[CtxT]):
    """One executor process, run until `request_stop`."""

    bus_name: ClassVar[str]
    """The process's name on the bus (`<bus_name>:<executor_id>`)."""
    id_prefix: ClassVar[str]
    """The start of the default executor id."""
    durables: ClassVar[Mapping[AgentType, str]]
    """The durable work consumer of each agent type served (one per type, shared by
    every process of this executor)."""

    def __init__(
        self,
        nats_url: str,
        settings: ExecutorSettings,
        executor_id: str,
        stream_replicas: int = 1,
        limits: LimitSettings | None = None,
    ) -> None:
        self.limits = limits or LimitSettings()
        self.nats_url = nats_url
        self.settings = settings
        self.executor_id = executor_id
        self.stream_replicas = stream_replicas
        self.bus = Bus(nats_url, f"{self.bus_name}:{executor_id}")
        self.ctx: CtxT | None = None
        self._stop = asyncio.Event()
        self.health = LoopHealth()
        """This process's supervised loops; published as loop reports (see loop_reports)."""
        # The executor's own logger (`whoosh_executor_cli.service`, ...): its lines keep
        # naming the executor that wrote them.
        self._log = logging.getLogger(type(self).__module__)
        self._declare_cancellation_subscribers()

    @classmethod
    def from_config(
        cls, config: WhooshConfig, nats_url: str | None, executor_id: str | None
    ) -> Self:
        """The executor a configuration describes; the command line's `--nats` and
        `--executor-id`, when given, win over it."""
        return cls(
            nats_url=nats_url or config.nats.client_url(),
            settings=config.executor,
            executor_id=executor_id or default_executor_id(cls.id_prefix),
            stream_replicas=config.nats.stream_replicas,
            limits=config.limits,
        )

    # -- what each executor fills in -----------------------------------------------------

    @abstractmethod
    def _context(self, progress: ProgressPublisher) -> CtxT:
        """What this executor's attempts will share."""

    @abstractmethod
    def _handler(self, ctx: CtxT) -> MessageHandler:
        """What runs one work message."""

    def _alongside(self, ctx: CtxT) -> AbstractAsyncContextManager[None]:
        """Work beside the queue (probes, checks), running while the executor serves."""
        return contextlib.nullcontext()

    def _ssh_pools(self, ctx: CtxT) -> Callable[[], list[SshPoolReading]] | None:
        """SSH pool readings for the heartbeat, from an executor that keeps SSH pools."""
        return None

    def _drain_grace_s(self) -> float:
        """How long a stop waits for stopped runs to be reported."""
        return REPORT_GRACE_S

    async def _close_context(self, ctx: CtxT) -> None:
        """Close what the context holds (connections), once no attempt uses it."""

    # -- the shared lifecycle --------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin an orderly stop; asked again (a second Ctrl-C), stop waiting for reports."""
        if self._stop.is_set() and self.ctx is not None:
            self._log.warning("stopping now: unanswered reports are left for redelivery")
            self.ctx.abandon_reports.set()
        self._stop.set()

    async def run(self) -> None:
        """Serve work until `request_stop`. Every loop (fetching, heartbeats, the executor's
        own rounds) is supervised: one that dies is logged, restarted, and reported down
        until it works again; the executor goes on serving."""
        await self.bus.start()
        try:
            await ensure_streams(self.bus.js, self.stream_replicas)  # create if missing only
            progress = ProgressPublisher(self.bus.nc)
            progress.start()
            ctx = self.ctx = self._context(progress)
            ctx.limits = self.limits
            consumers = await self._bind_consumers(self._handler(ctx))
            fetching = [
                self._supervised(f"fetch {durable}", consumer.run)
                for consumer, durable in zip(consumers, self.durables.values(), strict=True)
            ]
            async with self._alongside(ctx):
                heartbeats = self._heartbeats(ctx)
                heartbeats.start()
                rechecks = self._supervised(
                    "cancellation catch-up",
                    lambda: after_each_reconnect(self.bus.nc, lambda: self._recheck(ctx.running)),
                )
                reports = self._supervised(
                    "loop reports",
                    lambda: publish_loop_reports(
                        self.bus.nc,
                        self.executor_id,
                        self.health,
                        self.settings.heartbeat_interval_s,
                    ),
                )
                self._log.info(
                    "executor ready",
                    extra={
                        "executor_id": self.executor_id,
                        "nats": self.nats_url,
                        "max_parallel": self.settings.max_parallel,
                    },
                )
                await self._stop.wait()  # a loop that dies is restarted, never the end
                rechecks.cancel()
                reports.cancel()
                await asyncio.gather(rechecks, reports, return_exceptions=True)
            await self._shutdown(ctx, consumers, fetching)
            await heartbeats.stop()
        finally:
            await self._close()
            self._log.info("executor stopped", extra={"executor_id": self.executor_id})

    def _supervised(self, name: str, run: Callable[[], Awaitable[object]]) -> asyncio.Task[None]:
        """A loop of this executor under `supervise`: an exception is logged at ERROR and
        the loop restarted with backoff, and it shows as down in the loop reports until
        it marks itself healthy. A loop that ends because the executor stops just ends."""
        return asyncio.create_task(
            supervise(name, run, self.health, stopping=self._stop), name=name
        )

    def _round_done(self, name: str) -> Callable[[], None]:
        """What a loop calls after each round that worked: it is healthy (again)."""
        return lambda: self.health.up(name)

    async def _close(self) -> None:
        """Close the context's connections, then the bus, whatever the first does."""
        try:
            if self.ctx is not None:
                await self._close_context(self.ctx)
        finally:
            await self.bus.close()

    async def _bind_consumers(self, handler: MessageHandler) -> list[WorkConsumer]:
        consumers = [
            WorkConsumer(self.bus.nc, self.settings, handler, durable=durable, agent_type=kind)
            for kind, durable in self.durables.items()
        ]
        for consumer, durable in zip(consumers, self.durables.values(), strict=True):
            await consumer.bind()
            consumer.on_fetched = self._round_done(f"fetch {durable}")
        return consumers

    async def _shutdown(
        self, ctx: CtxT, consumers: list[WorkConsumer], fetching: list[asyncio.Task[None]]
    ) -> None:
        self._log.info("stopping", extra={"running": len(ctx.running)})
        ctx.stopping.set()
        for consumer in consumers:
            consumer.stop()
        for run in ctx.running:
            run.stop(StopCause.SHUTDOWN, "executor stopping")
        await asyncio.gather(*fetching, return_exceptions=True)
        draining = asyncio.create_task(_drain(consumers))
        done, _ = await asyncio.wait({draining}, timeout=self._drain_grace_s())
        if not done:
            ctx.abandon_reports.set()
            await draining
        for consumer in consumers:
            await consumer.close()
        await ctx.progress.close()
        try:
            await self.bus.nc.flush(timeout=2)
        except Exception as exc:  # acks already written stay buffered only if the bus is gone
            self._log.warning("could not flush the last acks: %s", exc)

    def _heartbeats(self, ctx: CtxT) -> HeartbeatPublisher:
        """Tells the monitor this executor lives, what it runs, and its host's readings."""
        return HeartbeatPublisher(
            self.bus.nc,
            self.executor_id,
            list(self.durables),
            self.settings.heartbeat_interval_s,
            running=lambda: running_work(ctx.running),
            max_parallel=self.settings.max_parallel,
            ssh_pools=self._ssh_pools(ctx),
            health=self.health,
        )

    async def _recheck(self, running: RunningAttempts[Any]) -> None:
        stopped = await recheck_runs(running, self.bus.ask)
        if stopped:
            self._log.warning("stopped %d run(s) whose task ended while NATS was away", stopped)

    def _declare_cancellation_subscribers(self) -> None:
        """Core-NATS subscribers for TaskCancelled / TaskTimedOut (declared before start)."""

        async def on_task_event(msg: NatsMessage) -> None:
            if self.ctx is not None:
                stop_for_event(self.ctx.running, msg.body)

        for subject in STOP_EVENT_SUBJECTS:
            self.bus.broker.subscriber(subject)(on_task_event)


async def _drain(consumers: list[WorkConsumer]) -> None:
    await asyncio.gather(*(consumer.drain() for consumer in consumers))
