"""Can this executor run an agent's command? Asked before registration, and periodically.

Only an executor can tell: a remote agent's SSH host, key, host key and CLI are seen
from here (and a local agent's command must be on this machine's PATH). Two uses:

- `ProbeResponder` answers `ProbeAgent` requests on `whoosh.probe.cli` (one executor of
  the queue group answers), so a registration can be refused with the precise cause
  (host unreachable, auth failed, host key mismatch or unknown, command not found);
- `HostReporter` probes every remote CLI agent each `probe_interval_s` and reports the
  result as the agent's inventory (reachable or not, with the reason and the CLI's
  version), which takes an unreachable host out of rotation until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import ReportInventory
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.connectivity import ProbeAgent, ProbeReply
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType
from whoosh_shared.contract.inventory import Inventory
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.probe_rounds import every_interval, registered_agents

from whoosh_executor_cli.ssh_probe import ProbeResult, probe_agent

log = logging.getLogger(__name__)

PROBE_QUEUE = "executor-cli-probe"


async def check_agent(spec: AgentSpec) -> ProbeReply:
    """Whether this executor can run the agent's command, and what it found or why not."""
    if spec.type is not AgentType.CLI:
        return ProbeReply(ok=False, detail=f"a {spec.type.value} agent is not run by executor-cli")
    if spec.ssh_target() is None:
        found = shutil.which(spec.command[0])
        if found is None:
            return ProbeReply(
                ok=False,
                detail=f"command_not_found: {spec.command[0]!r} is not on the executor's PATH",
            )
        return ProbeReply(ok=True, detail=f"local command {found}")
    return _reply(await probe_agent(spec))


def _reply(result: ProbeResult) -> ProbeReply:
    if result.ok:
        version = f" ({result.version})" if result.version else ""
        return ProbeReply(ok=True, detail=f"{result.cli_path} on {result.host}{version}")
    cause = result.cause.value if result.cause else "failed"
    return ProbeReply(ok=False, detail=f"{cause}: {result.reason or 'the probe failed'}")


class ProbeResponder:
    """Answers connectivity tests for CLI agents on the bus."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._sub: Subscription | None = None

    async def start(self) -> None:
        subject = subjects.probe(WORK_TOKEN[AgentType.CLI])
        self._sub = await self.nc.subscribe(subject, queue=PROBE_QUEUE, cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()

    async def _on_request(self, msg: Msg) -> None:
        try:
            request = ProbeAgent.model_validate_json(msg.data)
        except ValidationError as exc:
            reply = ProbeReply(ok=False, detail=f"invalid ProbeAgent request: {exc.errors()[0]}")
        else:
            reply = await check_agent(request.spec)
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(reply.model_dump_json().encode())


class HostReporter:
    """Periodic connectivity of every remote CLI agent, reported as its inventory."""

    def __init__(self, bus: Bus, settings: ExecutorSettings) -> None:
        self.bus = bus
        self.settings = settings

    async def run(
        self, stopping: asyncio.Event, on_round: Callable[[], None] | None = None
    ) -> None:
        await every_interval(self.report_once, self.settings.probe_interval_s, stopping, on_round)

    async def report_once(self) -> dict[str, Inventory]:
        agents = await registered_agents(self.bus, self.settings.probe_timeout_s)
        remote = [
            view.spec
            for view in agents or []
            if view.spec.type is AgentType.CLI and view.spec.ssh_target() is not None
        ]
        found = await asyncio.gather(*(self._probe(spec) for spec in remote))
        inventories = {spec.name: inv for spec, inv in zip(remote, found, strict=True)}
        await asyncio.gather(*(self._report(name, inv) for name, inv in inventories.items()))
        return inventories

    async def _probe(self, spec: AgentSpec) -> Inventory:
        try:
            async with asyncio.timeout(self.settings.probe_timeout_s * 4):
                result = await probe_agent(spec)
        except TimeoutError:
            return Inventory(reachable=False, reason="the connectivity test did not finish")
        if result.ok:
            return Inventory(reachable=True, version=(result.version or "")[:100] or None)
        cause = result.cause.value if result.cause else "failed"
        return Inventory(reachable=False, reason=f"{cause}: {result.reason}"[:500])

    async def _report(self, name: str, inventory: Inventory) -> None:
        command = ReportInventory(name=name, inventory=inventory, actor="executor-cli-probe")
        try:
            await self.bus.send(command, timeout=self.settings.probe_timeout_s)
        except (BusError, nats.errors.Error) as exc:
            log.debug("connectivity of %s not reported: %s", name, exc)
