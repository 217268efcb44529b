"""Cancelling the consuming task closes the stream; slow servers never delay fast ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from executor_ollama.ollama_double import OllamaDouble
from harness import eventually, free_port
from whoosh_executor_ollama.failures import LlmError
from whoosh_executor_ollama.ollama_api import OllamaClient
from whoosh_executor_ollama.openai_api import OpenAICompatClient
from whoosh_executor_ollama.stream import LlmStream

USER = [{"role": "user", "content": "go on"}]
LONG = " ".join(f"word{i}" for i in range(200))  # 200 tokens: 10 s at 20 tokens/s


async def wait_until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def consume(stream: LlmStream, first: asyncio.Event) -> None:
    async with stream:
        async for _ in stream:
            first.set()


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_cancel_closes_the_stream(
    make_double: Callable[..., OllamaDouble], kind: str
) -> None:
    double = make_double(reply=LONG, tokens_per_s=20)
    client = OllamaClient(double.url) if kind == "ollama" else OpenAICompatClient(double.url)
    async with client:
        first = asyncio.Event()
        task = asyncio.create_task(consume(client.chat("gemma3:1b", USER), first))
        await asyncio.wait_for(first.wait(), 3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: double.client_gone == 1)
    assert time.monotonic() - started < 1.0  # seen at once, not after the 10 s reply
    assert double.completed == 0 and double.active == 0
    sent = double.chunks_sent
    await asyncio.sleep(0.2)
    assert double.chunks_sent == sent < 20  # it stopped generating


async def test_leaving_early_closes_the_stream(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(reply=LONG, tokens_per_s=20)
    async with OllamaClient(double.url) as client:
        async with client.generate("gemma3:1b", "x") as stream:
            async for _ in stream:
                break
        await wait_until(lambda: double.client_gone == 1)
    assert double.completed == 0


async def test_slow_server_does_not_delay_fast_one(
    make_double: Callable[..., OllamaDouble],
) -> None:
    slow = make_double(reply=" ".join(["slow"] * 20), tokens_per_s=40, ttft_s=0.2)  # ~0.7 s
    fast = make_double(reply=" ".join(["fast"] * 20), tokens_per_s=2000)
    dead = f"http://127.0.0.1:{free_port()}"
    finished: list[str] = []

    async def run(client: OllamaClient, name: str) -> None:
        try:
            await client.chat("gemma3:1b", USER).collect()
        except LlmError:
            name = f"{name}-failed"
        finished.append(name)

    async with (
        OllamaClient(slow.url) as slow_client,
        OllamaClient(fast.url) as fast_client,
        OllamaClient(dead) as dead_client,
    ):
        started = time.monotonic()
        jobs = [run(slow_client, "slow") for _ in range(4)]
        jobs += [run(dead_client, "dead") for _ in range(2)]
        jobs += [run(fast_client, "fast") for _ in range(4)]
        await asyncio.gather(*jobs)
        elapsed = time.monotonic() - started
    assert sorted(finished[:6]) == ["dead-failed"] * 2 + ["fast"] * 4
    assert finished[6:] == ["slow"] * 4
    assert elapsed < 2.0  # four slow streams ran side by side, not one after another
    # the server thread counts a stream after sending its last chunk, which the client may
    # already have read: wait for the count rather than racing it
    await eventually(
        lambda: slow.completed == 4 and fast.completed == 4,
        timeout=5,
        what="both doubles to count every stream as completed",
    )
