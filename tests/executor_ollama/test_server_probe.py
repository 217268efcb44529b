"""Probing a server's inventory against the Ollama double, and against servers that
cannot answer: a probe reports, it never raises."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from executor_ollama.ollama_double import OllamaDouble
from harness import free_port
from whoosh_executor_ollama.http_pools import new_session
from whoosh_executor_ollama.server_probe import ShowCache, probe
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import AgentType


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as session:
        yield session


def agent(endpoint: str, kind: AgentType = AgentType.OLLAMA) -> AgentSpec:
    return AgentSpec(name="gpu", type=kind, endpoint=endpoint, model="llama3.2:1b")


async def test_an_ollama_server_reports_models_capabilities_context_and_loaded(
    double: OllamaDouble, http: aiohttp.ClientSession
) -> None:
    found = await probe(agent(double.url), http, ShowCache(), timeout_s=5)
    assert found.reachable and found.version == "0.12.6"
    assert set(found.models) == {"llama3.2:1b", "gemma3:1b"}
    llama = found.models["llama3.2:1b"]
    assert llama.capabilities == ["completion", "tools"]
    assert llama.context_length == 131072 and llama.size_bytes > 0
    assert found.loaded == []
    chat = {"model": "gemma3:1b", "messages": [{"role": "user", "content": "x"}]}
    async with http.post(f"{double.url}/api/chat", json=chat) as answer:
        await answer.read()
    again = await probe(agent(double.url), http, ShowCache(), timeout_s=5)
    assert again.loaded == ["gemma3:1b"] and again.is_loaded("gemma3:1b")


async def test_a_loaded_models_expiry_is_reported_as_ps_gives_it(
    double: OllamaDouble, http: aiohttp.ClientSession
) -> None:
    """expires_at: the last use + keep_alive (Ollama's 5 min unless the request sets it)."""
    before = datetime.now(UTC)
    for model, keep_alive in (("gemma3:1b", None), ("llama3.2:1b", "90s")):
        body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
        if keep_alive:
            body["keep_alive"] = keep_alive
        async with http.post(f"{double.url}/api/chat", json=body) as answer:
            await answer.read()
    after = datetime.now(UTC)
    found = await probe(agent(double.url), http, ShowCache(), timeout_s=5)
    gemma, llama = found.expires["gemma3:1b"], found.expires["llama3.2:1b"]
    assert before + timedelta(minutes=5) <= gemma <= after + timedelta(minutes=5)
    assert before + timedelta(seconds=90) <= llama <= after + timedelta(seconds=90)


async def test_show_answers_are_cached_while_the_digest_stays(
    double: OllamaDouble, http: aiohttp.ClientSession
) -> None:
    cache = ShowCache()
    first = await probe(agent(double.url), http, cache, timeout_s=5)
    assert double.probes["/api/show"] == 2
    second = await probe(agent(double.url), http, cache, timeout_s=5)
    assert second == first
    assert double.probes["/api/show"] == 2 and double.probes["/api/tags"] == 2


async def test_an_openai_compatible_server_reports_its_model_ids(
    double: OllamaDouble, http: aiohttp.ClientSession
) -> None:
    found = await probe(agent(double.url, AgentType.OPENAI), http, ShowCache(), timeout_s=5)
    assert found.reachable and set(found.models) == {"llama3.2:1b", "gemma3:1b"}
    assert double.probes["/v1/models"] == 1


async def test_a_closed_port_is_unreachable_with_the_reason(http: aiohttp.ClientSession) -> None:
    found = await probe(agent(f"http://127.0.0.1:{free_port()}"), http, ShowCache(), 5)
    assert not found.reachable
    assert "cannot connect" in (found.reason or "")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


async def test_a_server_that_never_answers_is_unreachable_after_the_timeout(
    silent_server: str, http: aiohttp.ClientSession
) -> None:
    started = asyncio.get_running_loop().time()
    found = await probe(agent(silent_server), http, ShowCache(), timeout_s=0.5)
    assert not found.reachable and found.reason == "no answer within 0.5s"
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_server_that_is_not_ollama_is_unreachable(http: aiohttp.ClientSession) -> None:
    async def not_ollama(request: web.Request) -> web.Response:
        return web.Response(status=404, text="nothing here")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_ollama)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        found = await probe(agent(f"http://127.0.0.1:{port}"), http, ShowCache(), timeout_s=5)
    finally:
        await runner.cleanup()
    assert not found.reachable
    assert found.reason == "GET / answered 404: is this an Ollama server?"
