"""Periodic inventory: probe every LLM agent's server and tell the coordinator.

The executor keeps no list of agents (work items carry the agent's spec), so it asks
the coordinator which LLM agents exist, probes them all at once (one slow or dead
server costs its own timeout, not the others'), and sends one ReportInventory each.
The coordinator records only changes, so several executors probing the same servers
cost messages, not events. Logged only when a server is lost or comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import nats.errors
from whoosh_shared.contract.commands import ReportInventory
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import Inventory
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.probe_rounds import every_interval, registered_agents

from whoosh_executor_ollama.server_probe import ShowCache, probe

log = logging.getLogger(__name__)

LLM_TYPES = (AgentType.OLLAMA, AgentType.OPENAI)


class InventoryReporter:
    def __init__(self, bus: Bus, http: aiohttp.ClientSession, settings: ExecutorSettings) -> None:
        self.bus = bus
        self.http = http
        self.settings = settings
        self.cache = ShowCache()
        self._reachable: dict[str, bool] = {}

    async def run(
        self, stopping: asyncio.Event, on_round: Callable[[], None] | None = None
    ) -> None:
        """Probe at once, then every probe_interval_s, until `stopping` is set."""
        await every_interval(self.report_once, self.settings.probe_interval_s, stopping, on_round)

    async def report_once(self) -> dict[str, Inventory]:
        """One round; returns what each agent's probe found (empty if the coordinator
        could not be asked: the next round tries again)."""
        agents = await registered_agents(self.bus, self.settings.probe_timeout_s)
        views = [
            view for view in agents or [] if view.spec.type in LLM_TYPES and view.spec.endpoint
        ]
        timeout = self.settings.probe_timeout_s
        found = await asyncio.gather(
            *(probe(view.spec, self.http, self.cache, timeout) for view in views)
        )
        pairs = list(zip(views, found, strict=True))
        await asyncio.gather(*(self._report(v.spec.name, i, v.version) for v, i in pairs))
        return {view.spec.name: inventory for view, inventory in pairs}

    async def _report(self, name: str, inventory: Inventory, seen_version: int) -> None:
        before = self._reachable.get(name)
        self._reachable[name] = inventory.reachable
        if before is not False and not inventory.reachable:
            log.warning("agent unreachable", extra={"agent": name, "reason": inventory.reason})
        elif before is False and inventory.reachable:
            log.info("agent reachable again", extra={"agent": name})
        try:
            reply = await self.bus.send(
                ReportInventory(
                    name=name,
                    inventory=inventory,
                    seen_version=seen_version,
                    actor="executor-probe",
                ),
                timeout=self.settings.probe_timeout_s,
            )
        except (BusError, nats.errors.Error) as exc:
            log.debug("inventory of %s not reported: %s", name, exc)
            return
        if not reply.accepted:
            log.debug("inventory of %s rejected: %s", name, reply.reason)
