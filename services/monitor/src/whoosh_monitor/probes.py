"""Liveness probes of agents' servers: one cheap request each, bounded by a timeout.

Ollama: `GET /api/version`; OpenAI-compatible: `GET /v1/models` (any answer below 500
counts: the server is there, a bad key is the executor's problem to report); remote
CLI agents: the SSH host's banner (`SSH-...`) on its port. The full inventory (models,
what is loaded) stays with executor-ollama's slower probe; this one only asks "does
it answer", often enough to take a dead server out of rotation within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import httpx
from whoosh_shared.contract.agent_env import EnvReferenceError, resolved_value
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import AgentType

API_KEY_ENV = "OPENAI_API_KEY"


def probed(spec: AgentSpec) -> bool:
    """Whether the monitor can probe this agent's server."""
    if spec.type in (AgentType.OLLAMA, AgentType.OPENAI):
        return bool(spec.endpoint)
    return bool(spec.host)


def openai_base(endpoint: str) -> str:
    return endpoint if endpoint.endswith("/v1") else f"{endpoint}/v1"


async def probe(spec: AgentSpec, http: httpx.AsyncClient, timeout_s: float) -> str | None:
    """None when the server answered; otherwise why not, in a few words."""
    try:
        async with asyncio.timeout(timeout_s):
            if spec.type is AgentType.CLI:
                return await _probe_ssh(spec)
            return await _probe_http(spec, http)
    except TimeoutError:
        return f"no answer within {timeout_s:g}s"


async def _probe_http(spec: AgentSpec, http: httpx.AsyncClient) -> str | None:
    endpoint = spec.endpoint or ""
    if spec.type is AgentType.OPENAI:
        try:
            key = resolved_value(spec.env, API_KEY_ENV, os.environ)
        except EnvReferenceError as exc:
            return str(exc)[:200]
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{openai_base(endpoint)}/models"
    else:
        headers, url = {}, f"{endpoint}/api/version"
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
    if response.status_code >= 500:
        return f"HTTP {response.status_code} from {url}"
    return None


async def _probe_ssh(spec: AgentSpec) -> str | None:
    target = spec.ssh_target()
    if target is None:
        return None
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        return f"cannot connect to {target.label}: {exc.strerror or exc}"
    try:
        banner = await reader.read(255)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not banner.startswith(b"SSH-"):
        return f"{target.label} does not answer as an SSH server"
    return None
