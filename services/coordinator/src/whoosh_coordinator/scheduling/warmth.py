"""Whether a model is loaded on an agent's server: folded from events, read with a clock.

Ollama keeps a model in memory while requests use it and for its keep-alive after the
last one ends (5 min unless the request or OLLAMA_KEEP_ALIVE says otherwise), then
unloads it: the next request pays a cold load. The executor's probe (`/api/ps`) sees the
loaded models and when each expires, but only every `executor.probe_interval_s` (and once
soon after a model's first use on a server), and an unchanged inventory is not recorded
again; so the coordinator folds its own idea of each model's warmth (`Warmth`, on the
agent's view) from three kinds of events:

- a probe (`AgentInventoryReported`): a listed model is loaded until its `expires_at`,
  a model not listed is not loaded. The expiry minus the last completion the coordinator
  saw there is at most the server's keep-alive for it plus any later use by another
  client, so the smallest seen is kept (a raised keep-alive is not learned: counting a
  model cold too early costs less than sending work to a server that must load it). An
  inventory without expiries (recorded before they were reported) counts a listed model
  loaded for its keep-alive from the event. What a probe says of a model is not read
  while work runs on it (Ollama's expiry is stale then), nor when work with it ended
  after the probe round began (`seen_version`: the probe may have run before that), nor
  an expiry earlier than the last completion there.
- a slot taken or released (`AgentSlotTaken`/`AgentSlotReleased`): a model with work in
  flight is never unloaded.
- a completion (`TaskCompleted`): loaded until the completion + the task's own
  `keep_alive` if it set one, else the keep-alive probes implied (for this model, else
  for any model on that server: OLLAMA_KEEP_ALIVE is the server's), else Ollama's 5 min.

`is_warm(warmth, now)` is the reading: warm while work runs on it, else before `until`.
Pure: no I/O and no wall clock; the fold uses the events' timestamps, the reading the
caller's clock, so a replay equals the live projection.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from whoosh_shared.contract.inventory import (
    DEFAULT_KEEP_ALIVE_S,
    Inventory,
    Warmth,
    keep_alive_seconds,
    model_key,
)
from whoosh_shared.contract.queries import AgentView


def is_warm(warmth: Warmth | None, now: datetime | None) -> bool:
    """Loaded now: work runs on it, or its expiry is ahead. Without a clock (`now` None:
    callers that have none), loaded unless something said it was unloaded."""
    if warmth is None:
        return False
    if warmth.running:
        return True
    if warmth.until is None:
        return False
    return now is None or now < warmth.until


def probed(
    agent: AgentView, inventory: Inventory, at: datetime, seen_version: int | None = None
) -> None:
    """Fold a probe's findings, recorded at `at`, from a probe round that began when the
    agent was at `seen_version` (None: not known, inventories recorded before it was)."""
    loaded = {model_key(m) for m in inventory.loaded} if inventory.reachable else set()
    expires = {model_key(m): t for m, t in inventory.expires.items()}
    for key in set(agent.warmth) | loaded:
        warmth = agent.warmth.get(key) or Warmth()
        if warmth.running:
            continue  # in use: loaded whatever the probe says, and its expiry is stale
        ended = warmth.ended_version
        if seen_version is not None and ended is not None and ended > seen_version:
            continue  # work with it ended after the round began: newer than the probe
        last = warmth.last_used
        expiry = expires.get(key)
        if key not in loaded:
            warmth = warmth.model_copy(update={"until": None})
        elif expiry is not None:
            if last is not None and expiry <= last:
                continue  # read while the last task ran (Ollama's is stale then)
            keep_alive = warmth.keep_alive_s
            if last is not None and not warmth.asked:
                implied = (expiry - last).total_seconds()
                keep_alive = implied if keep_alive is None else min(keep_alive, implied)
            warmth = warmth.model_copy(update={"until": expiry, "keep_alive_s": keep_alive})
        else:  # listed without an expiry: an inventory recorded before expiries were
            until = at + timedelta(seconds=_keep_alive(agent, warmth))
            warmth = warmth.model_copy(update={"until": until})
        _put(agent, key, warmth)


def slot_taken(agent: AgentView, key: str) -> None:
    warmth = agent.warmth.get(key) or Warmth()
    agent.warmth[key] = warmth.model_copy(update={"running": warmth.running + 1})


def slot_released(agent: AgentView, key: str) -> None:
    """Work with it ended (the agent's view is at the release's version)."""
    warmth = agent.warmth.get(key)
    if warmth is not None and warmth.running:
        update = {"running": warmth.running - 1, "ended_version": agent.version}
        agent.warmth[key] = warmth.model_copy(update=update)


def used(agent: AgentView, key: str, at: datetime, keep_alive: str | float | None) -> None:
    """A task completed with this model at `at`: loaded for its keep-alive from then."""
    warmth = agent.warmth.get(key) or Warmth()
    asked = keep_alive_seconds(keep_alive)
    seconds = asked if asked is not None else _keep_alive(agent, warmth)
    until = at + timedelta(seconds=seconds) if seconds > 0 else None  # 0: unloaded at once
    update = {"until": until, "last_used": at, "asked": asked is not None}
    agent.warmth[key] = warmth.model_copy(update=update)


def _keep_alive(agent: AgentView, warmth: Warmth) -> float:
    """The server's keep-alive for this model: as probes implied for it, else for any
    model there (OLLAMA_KEEP_ALIVE is the server's), else Ollama's default."""
    if warmth.keep_alive_s is not None:
        return warmth.keep_alive_s
    learned = [w.keep_alive_s for w in agent.warmth.values() if w.keep_alive_s is not None]
    return min(learned, default=DEFAULT_KEEP_ALIVE_S)


def _put(agent: AgentView, key: str, warmth: Warmth) -> None:
    """Store it, or drop an entry that says nothing (not loaded, nothing learned)."""
    if warmth == Warmth():
        agent.warmth.pop(key, None)
    else:
        agent.warmth[key] = warmth
