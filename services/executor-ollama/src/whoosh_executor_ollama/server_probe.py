"""Probing one LLM server: what it has, what is loaded, whether it answers at all.

Ollama: `GET /` (alive), `/api/version`, `/api/tags` (pulled models), `/api/ps` (loaded
models) and `/api/show` per model (capabilities, context length). `/api/show` answers
do not change while a model's digest stays the same, so they are cached by digest: a
periodic probe of a server with fifty models costs four requests, not fifty-four.
OpenAI-compatible servers: `GET /v1/models`, which names models and nothing more.

A probe never raises: a server that cannot be reached, or answers nonsense, is an
Inventory with `reachable=False` and the reason, which is exactly what the coordinator
needs to take it out of rotation.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime

import aiohttp
from whoosh_shared.contract.agent_env import EnvReferenceError, resolved_value
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import MAX_MODELS, Inventory, ModelFacts

from whoosh_executor_ollama.failures import LlmError
from whoosh_executor_ollama.ollama_api import ModelEntry, OllamaClient, RunningModel
from whoosh_executor_ollama.openai_api import API_KEY_ENV, OpenAICompatClient

log = logging.getLogger(__name__)

SHOW_CONCURRENCY = 4  # /api/show calls in flight per server: a probe must stay light


class ShowCache:
    """/api/show facts by (endpoint, model, digest)."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str, str], ModelFacts] = {}

    def get(self, endpoint: str, entry: ModelEntry) -> ModelFacts | None:
        return self._facts.get((endpoint, entry.name, entry.digest or ""))

    def put(self, endpoint: str, entry: ModelEntry, facts: ModelFacts) -> None:
        self._facts[(endpoint, entry.name, entry.digest or "")] = facts


async def probe(
    agent: AgentSpec, http: aiohttp.ClientSession, cache: ShowCache, timeout_s: float
) -> Inventory:
    """What the agent's server has now; unreachable (with the reason) on any failure."""
    endpoint = agent.endpoint or ""
    try:
        async with asyncio.timeout(timeout_s):
            if agent.type is AgentType.OPENAI:
                api_key = resolved_value(agent.env, API_KEY_ENV, os.environ)
                client = OpenAICompatClient(endpoint, api_key=api_key, session=http)
                return await _probe_openai(client)
            return await _probe_ollama(OllamaClient(endpoint, session=http), cache)
    except TimeoutError:
        return Inventory(reachable=False, reason=f"no answer within {timeout_s:g}s")
    except (LlmError, EnvReferenceError) as exc:
        return Inventory(reachable=False, reason=str(exc)[:500])
    except (aiohttp.ClientError, ValueError) as exc:  # e.g. a body that is not what the API says
        return Inventory(reachable=False, reason=f"{type(exc).__name__}: {exc}"[:500])


async def _probe_ollama(client: OllamaClient, cache: ShowCache) -> Inventory:
    await client.running()
    version, tags, loaded = await asyncio.gather(client.version(), client.tags(), client.ps())
    entries = tags[:MAX_MODELS]
    gate = asyncio.Semaphore(SHOW_CONCURRENCY)

    async def facts_of(entry: ModelEntry) -> ModelFacts:
        known = cache.get(client.base_url, entry)
        if known is not None:
            return known
        async with gate:
            try:
                info = await client.show(entry.name)
            except LlmError as exc:  # removed between tags and show: list it without facts
                log.debug("show %s failed: %s", entry.name, exc)
                return ModelFacts(size_bytes=entry.size)
        facts = ModelFacts(
            capabilities=info.capabilities,
            context_length=info.context_length,
            size_bytes=entry.size,
        )
        cache.put(client.base_url, entry, facts)
        return facts

    facts = await asyncio.gather(*(facts_of(entry) for entry in entries))
    return Inventory(
        reachable=True,
        version=version or None,
        models={entry.name: fact for entry, fact in zip(entries, facts, strict=True)},
        loaded=[model.name for model in loaded],
        expires={model.name: at for model in loaded if (at := _expiry(model)) is not None},
    )


def _expiry(model: RunningModel) -> datetime | None:
    """When the server unloads the model unless it is used again (its last use +
    keep_alive); None when absent or unreadable (a time without a zone included)."""
    try:
        at = datetime.fromisoformat(model.expires_at or "")
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


async def _probe_openai(client: OpenAICompatClient) -> Inventory:
    names = await client.models()
    return Inventory(reachable=True, models={name: ModelFacts() for name in names[:MAX_MODELS]})
