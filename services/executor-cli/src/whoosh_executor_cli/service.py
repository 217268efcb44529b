"""The executor process for CLI agents: its work consumer and what it runs beside it.

The process's life (bus wiring, cancellations, heartbeats, an orderly stop that leaves no
task half-reported) is every executor's (`whoosh_shared.runtime.executor_runtime`). What is this
executor's own: one durable consumer for CLI work, SSH connections kept for remote agents
(closed at the stop, and read for the heartbeat), a stop that also waits out the kill
grace of running commands, and beside the work: answering connectivity tests of CLI
agents (before they are registered) and checking its remote agents' hosts periodically
(`host_checks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import SshPoolReading
from whoosh_shared.runtime.executor_runtime import REPORT_GRACE_S, ExecutorRuntime
from whoosh_shared.runtime.progress import ProgressPublisher
from whoosh_shared.runtime.work_queue import MessageHandler

from whoosh_executor_cli.attempt import AttemptHandler, ExecutorContext
from whoosh_executor_cli.group_reaper import GroupReaper
from whoosh_executor_cli.host_checks import HostReporter, ProbeResponder

DURABLE_NAME = "executor-cli"


class ExecutorService(ExecutorRuntime[ExecutorContext]):
    """One executor process for CLI agents, run until `request_stop`."""

    bus_name = "whoosh-executor-cli"
    id_prefix = "cli"
    durables = {AgentType.CLI: DURABLE_NAME}

    def _context(self, progress: ProgressPublisher) -> ExecutorContext:
        reaper = GroupReaper(self.settings.kill_grace_s)
        reaper.start()
        return ExecutorContext(
            bus=self.bus,
            executor_id=self.executor_id,
            settings=self.settings,
            progress=progress,
            reaper=reaper,
        )

    def _handler(self, ctx: ExecutorContext) -> MessageHandler:
        return AttemptHandler(ctx).handle

    @asynccontextmanager
    async def _alongside(self, ctx: ExecutorContext) -> AsyncIterator[None]:
        """Connectivity tests answered and remote hosts checked while the executor serves."""
        responder = ProbeResponder(self.bus.nc)
        await responder.start()
        reporter = HostReporter(self.bus, self.settings)
        checking = self._supervised(
            "host checks", lambda: reporter.run(self._stop, self._round_done("host checks"))
        )
        try:
            yield
        finally:
            checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)
            await responder.stop()

    def _ssh_pools(self, ctx: ExecutorContext) -> Callable[[], list[SshPoolReading]]:
        return ctx.ssh.readings

    def _drain_grace_s(self) -> float:
        """Killed commands get their kill grace to end before their reports are waited for."""
        return self.settings.kill_grace_s + REPORT_GRACE_S

    async def _close_context(self, ctx: ExecutorContext) -> None:
        await ctx.ssh.close()
        if ctx.reaper is not None:
            ctx.reaper.close()
