"""Periodic inventory: probe every LLM agent's server and tell the coordinator.

The executor keeps no list of agents (work items carry the agent's spec), so it asks
the coordinator which LLM agents exist, probes them all at once (one slow or dead
server costs its own timeout, not the others'), and sends one ReportInventory each.
The coordinator records only changes, so several executors probing the same servers
cost messages, not events. Logged only when a server is lost or comes back.

A model's first completed call on an Ollama server is followed by a probe of that server
(`FIRST_USE_PROBE_S` later, once per server and model in this executor's life): its
`/api/ps` expiry then tells the coordinator the server's keep-alive (OLLAMA_KEEP_ALIVE),
which until then is taken to be Ollama's 5 minutes. A server that unloads after 30 s would
otherwise look warm for up to a probe interval after its first use, and work could go to
it on the strength of a model it has already unloaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import nats.errors
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import ReportInventory
from whoosh_shared.contract.config import ExecutorSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import Inventory
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.probe_rounds import every_interval, registered_agents

from whoosh_executor_ollama.server_probe import ShowCache, probe

log = logging.getLogger(__name__)

LLM_TYPES = (AgentType.OLLAMA, AgentType.OPENAI)
FIRST_USE_PROBE_S = 0.5  # after the call's report, so the probe sees its completion
FIRST_USE_TRIES = 3  # a probe that could not list the agents or reach the server: again
# after twice the wait (0.5, 1, 2 s); then the model's next completed call tries again


class InventoryReporter:
    def __init__(self, bus: Bus, http: aiohttp.ClientSession, settings: ExecutorSettings) -> None:
        self.bus = bus
        self.http = http
        self.settings = settings
        self.cache = ShowCache()
        self._reachable: dict[str, bool] = {}
        self._used: set[tuple[str, str]] = set()  # (agent, model) probed after a first use
        self._soon: dict[str, asyncio.Task[None]] = {}  # agent -> its probe after a first use

    async def run(
        self, stopping: asyncio.Event, on_round: Callable[[], None] | None = None
    ) -> None:
        """Probe at once, then every probe_interval_s, until `stopping` is set."""
        await every_interval(self.report_once, self.settings.probe_interval_s, stopping, on_round)

    async def report_once(self, only: str | None = None) -> dict[str, Inventory]:
        """One round (of every LLM agent, or of the agent named `only`); returns what each
        agent's probe found (empty if the coordinator could not be asked: the next round
        tries again)."""
        agents = await registered_agents(self.bus, self.settings.probe_timeout_s)
        views = [
            view
            for view in agents or []
            if view.spec.type in LLM_TYPES
            and view.spec.endpoint
            and (only is None or view.spec.name == only)
        ]
        timeout = self.settings.probe_timeout_s
        found = await asyncio.gather(
            *(probe(view.spec, self.http, self.cache, timeout) for view in views)
        )
        pairs = list(zip(views, found, strict=True))
        await asyncio.gather(*(self._report(v.spec.name, i, v.version) for v, i in pairs))
        return {view.spec.name: inventory for view, inventory in pairs}

    def used(self, agent: AgentSpec, model: str) -> None:
        """A call with `model` on `agent` completed: probe its server soon if that is the
        model's first use there (only Ollama reports when a model will be unloaded)."""
        if agent.type is not AgentType.OLLAMA or (agent.name, model) in self._used:
            return
        self._used.add((agent.name, model))
        if agent.name not in self._soon:
            task = asyncio.get_running_loop().create_task(self._probe_soon(agent.name))
            self._soon[agent.name] = task
            task.add_done_callback(lambda _: self._soon.pop(agent.name, None))

    async def _probe_soon(self, name: str) -> None:
        """Probe `name` once its call's completion is recorded. A round that did not
        report a reachable server (the coordinator not answering the listing in time, the
        server not answering the probe) is tried again, and after the last try the agent's
        models count as not yet probed, so that one lost round is not lost for good."""
        delay = FIRST_USE_PROBE_S
        for _ in range(FIRST_USE_TRIES):
            await asyncio.sleep(delay)
            found = await self.report_once(only=name)
            if name in found and found[name].reachable:
                return
            delay *= 2
        log.debug("no probe of %s after its first use: left to the next use", name)
        self._used = {(agent, model) for agent, model in self._used if agent != name}

    async def close(self) -> None:
        """Cancel the probes still waiting (at the executor's stop)."""
        pending = list(self._soon.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

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
