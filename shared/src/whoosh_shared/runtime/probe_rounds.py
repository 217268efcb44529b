"""Periodic rounds over the registered agents, as both executors' checks run them (the
LLM executor probing its servers, the CLI executor its SSH hosts).

An executor keeps no list of agents (work items carry the agent's spec), so each round
asks the coordinator for the current list: an agent registered or removed a moment ago
is seen on the next round. Rounds are jittered so that executors started together do not
probe in lockstep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import nats.errors

from whoosh_shared.contract.queries import AgentList, AgentView, ListAgents
from whoosh_shared.runtime.bus import Bus, BusError

log = logging.getLogger(__name__)

JITTER = 0.2


async def every_interval(
    one_round: Callable[[], Awaitable[object]],
    interval_s: float,
    stopping: asyncio.Event,
    on_round: Callable[[], None] | None = None,
) -> None:
    """A round at once, then one every `interval_s` (±20 %), until `stopping` is set.
    `on_round` is told after each round that ended (the loop is healthy); a round that
    raises ends the loop, for its supervisor to log and restart."""
    while not stopping.is_set():
        await one_round()
        if on_round is not None:
            on_round()
        pause = interval_s * random.uniform(1 - JITTER, 1 + JITTER)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)


async def registered_agents(bus: Bus, timeout_s: float) -> list[AgentView] | None:
    """Every registered agent, or None when the coordinator could not be asked (the next
    round tries again)."""
    try:
        reply = await bus.ask(ListAgents(with_env=True), timeout=timeout_s)
    except (BusError, nats.errors.Error) as exc:
        log.debug("cannot list agents to probe: %s", exc)
        return None
    if reply.status != "ok" or reply.result is None:
        log.debug("cannot list agents to probe: %s", reply.reason)
        return None
    return AgentList.model_validate(reply.result).agents
