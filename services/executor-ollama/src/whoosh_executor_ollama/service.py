"""The executor process for LLM agents: bus wiring, two work consumers, cancellations,
and an orderly stop.

One process serves both kinds of LLM agent, through two durable consumers: one for
Ollama agents (native API) and one for OpenAI-compatible servers. Calls share one
HTTP client (one connection pool) and one circuit-breaker board keyed by endpoint.
Beside them, the inventory reporter probes every LLM agent's server periodically.

Stopping must leave no task half-reported: fetching stops, calls still streaming are
cancelled (their connections closed) and their messages handed back (NAK) for another
executor, and reports already being sent get a short grace to be answered and acked.
Whatever is still unanswered after that stays unacked and is redelivered, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import httpx
from faststream.nats.annotations import NatsMessage
from whoosh_shared.bus import Bus, ensure_streams
from whoosh_shared.config import ExecutorSettings
from whoosh_shared.enums import AgentType
from whoosh_shared.heartbeat import HeartbeatPublisher, running_work
from whoosh_shared.progress import ProgressPublisher
from whoosh_shared.running_attempts import STOP_EVENT_SUBJECTS as CANCELLATION_SUBJECTS
from whoosh_shared.running_attempts import StopCause, stop_for_event
from whoosh_shared.work_queue import WorkConsumer

from whoosh_executor_ollama.attempt import AttemptHandler, ExecutorContext
from whoosh_executor_ollama.circuit_breaker import BreakerBoard
from whoosh_executor_ollama.inventory_reporter import InventoryReporter
from whoosh_executor_ollama.ollama_api import DEFAULT_LIMITS, DEFAULT_TIMEOUT

log = logging.getLogger(__name__)

DURABLES = {AgentType.OLLAMA: "executor-ollama", AgentType.OPENAI: "executor-openai"}

# How long a stop waits for reports in flight once the calls are cancelled.
REPORT_GRACE_S = 4.0


def default_executor_id() -> str:
    return f"llm-{socket.gethostname()}-{os.getpid()}"


class ExecutorService:
    """One executor process for Ollama and OpenAI-compatible agents, run until
    `request_stop`."""

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
        self.bus = Bus(nats_url, f"whoosh-executor-ollama:{executor_id}")
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
        http = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS)
        try:
            await ensure_streams(self.bus.js, self.stream_replicas)  # create if missing only
            self.progress = ProgressPublisher(self.bus.nc)
            self.progress.start()
            self.ctx = ExecutorContext(
                bus=self.bus,
                executor_id=self.executor_id,
                settings=self.settings,
                progress=self.progress,
                http=http,
                breakers=BreakerBoard(),
            )
            handler = AttemptHandler(self.ctx)
            consumers = [
                WorkConsumer(
                    self.bus.js, self.settings, handler.handle, durable=name, agent_type=kind
                )
                for kind, name in DURABLES.items()
            ]
            for consumer in consumers:
                await consumer.bind()
            fetching = [
                asyncio.create_task(c.run(), name=f"fetch-{name}")
                for c, name in zip(consumers, DURABLES.values(), strict=True)
            ]
            reporter = InventoryReporter(self.bus, http, self.settings)
            probing = asyncio.create_task(reporter.run(self._stop), name="inventory")
            ctx = self.ctx
            heartbeats = HeartbeatPublisher(
                self.bus.nc,
                self.executor_id,
                list(DURABLES),
                self.settings.heartbeat_interval_s,
                running=lambda: running_work(ctx.running),
                max_parallel=self.settings.max_parallel,
            )
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
            await asyncio.wait({*fetching, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            failure = None
            for task in fetching:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    failure = task.exception()  # a fetch loop died: stop cleanly, then say why
            probing.cancel()
            await asyncio.gather(probing, return_exceptions=True)
            await self._shutdown(consumers, fetching)
            await heartbeats.stop()
            if failure is not None:
                raise failure
        finally:
            await http.aclose()
            await self.bus.close()
            log.info("executor stopped", extra={"executor_id": self.executor_id})

    async def _shutdown(
        self, consumers: list[WorkConsumer], fetching: list[asyncio.Task[None]]
    ) -> None:
        ctx = self.ctx
        assert ctx is not None
        log.info("stopping", extra={"running": len(ctx.running)})
        ctx.stopping.set()
        for consumer in consumers:
            consumer.stop()
        for run in ctx.running:
            run.stop(StopCause.SHUTDOWN, "executor stopping")
        await asyncio.gather(*fetching, return_exceptions=True)
        draining = asyncio.create_task(self._drain(consumers))
        done, _ = await asyncio.wait({draining}, timeout=REPORT_GRACE_S)
        if not done:
            ctx.abandon_reports.set()
            await draining
        for consumer in consumers:
            await consumer.close()
        if self.progress is not None:
            await self.progress.close()
        try:
            await self.bus.nc.flush(timeout=2)
        except Exception as exc:  # acks already written stay buffered only if the bus is gone
            log.warning("could not flush the last acks: %s", exc)

    @staticmethod
    async def _drain(consumers: list[WorkConsumer]) -> None:
        await asyncio.gather(*(consumer.drain() for consumer in consumers))

    def _declare_cancellation_subscribers(self) -> None:
        """Core-NATS subscribers for TaskCancelled / TaskTimedOut (declared before start)."""

        async def on_task_event(msg: NatsMessage) -> None:
            if self.ctx is not None:
                stop_for_event(self.ctx.running, msg.body)

        for subject in CANCELLATION_SUBJECTS:
            self.bus.broker.subscriber(subject)(on_task_event)
