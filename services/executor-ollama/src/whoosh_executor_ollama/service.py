"""The executor process for LLM agents: its two work consumers and what it runs beside them.

One process serves both kinds of LLM agent, through two durable consumers: one for
Ollama agents (native API) and one for OpenAI-compatible servers. Calls go through one
aiohttp session (one connection pool) per server and share one circuit-breaker board
keyed by endpoint; the probes have a session of their own.
Beside them, the inventory reporter probes every LLM agent's server periodically, and a
server soon after a model's first use on it.

The process's life (bus wiring, cancellations, heartbeats, an orderly stop that leaves no
task half-reported) is every executor's (`whoosh_shared.runtime.executor_runtime`): at a stop,
calls still streaming are cancelled (their connections closed) and their messages handed
back for another executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.runtime.executor_runtime import ExecutorRuntime
from whoosh_shared.runtime.progress import ProgressPublisher
from whoosh_shared.runtime.work_queue import MessageHandler

from whoosh_executor_ollama.attempt import AttemptHandler, ExecutorContext
from whoosh_executor_ollama.circuit_breaker import BreakerBoard
from whoosh_executor_ollama.http_pools import HttpPools, new_session
from whoosh_executor_ollama.inventory_reporter import InventoryReporter

DURABLES = {AgentType.OLLAMA: "executor-ollama", AgentType.OPENAI: "executor-openai"}


class ExecutorService(ExecutorRuntime[ExecutorContext]):
    """One executor process for Ollama and OpenAI-compatible agents, run until
    `request_stop`."""

    bus_name = "whoosh-executor-ollama"
    id_prefix = "llm"
    durables = DURABLES

    def _context(self, progress: ProgressPublisher) -> ExecutorContext:
        return ExecutorContext(
            bus=self.bus,
            executor_id=self.executor_id,
            settings=self.settings,
            progress=progress,
            http=new_session(),
            breakers=BreakerBoard(),
            pools=HttpPools(),
        )

    def _handler(self, ctx: ExecutorContext) -> MessageHandler:
        return AttemptHandler(ctx).handle

    @asynccontextmanager
    async def _alongside(self, ctx: ExecutorContext) -> AsyncIterator[None]:
        """Every LLM agent's server probed while the executor serves (and soon after a
        model's first use on it)."""
        reporter = InventoryReporter(self.bus, ctx.http, self.settings)
        ctx.after_use = reporter.used
        probing = self._supervised(
            "probe rounds",
            lambda: reporter.run(self._stop, self._round_done("probe rounds")),
        )
        try:
            yield
        finally:
            ctx.after_use = None
            probing.cancel()
            await asyncio.gather(probing, reporter.close(), return_exceptions=True)

    async def _close_context(self, ctx: ExecutorContext) -> None:
        await ctx.http.close()
        if ctx.pools is not None:
            await ctx.pools.aclose()
