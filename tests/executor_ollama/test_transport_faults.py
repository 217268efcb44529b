"""What the clients re-implement over aiohttp, against the real double: lines that arrive
in pieces, a read timeout between two chunks (not over the whole call), a connection
reset mid-stream, and the line splitting itself (LF, CRLF, CR, no final newline)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from executor_ollama.fault_proxy import FaultProxy
from executor_ollama.ollama_double import OllamaDouble, tokenize
from whoosh_executor_ollama.failures import Decision, LlmError
from whoosh_executor_ollama.ollama_api import OllamaClient
from whoosh_executor_ollama.openai_api import OpenAICompatClient
from whoosh_executor_ollama.stream import response_lines

REPLY = "The quick brown fox jumps over the lazy dog."
USER = [{"role": "user", "content": "go on"}]


def client_for(kind: str, url: str, **kwargs: object) -> OllamaClient | OpenAICompatClient:
    return OllamaClient(url, **kwargs) if kind == "ollama" else OpenAICompatClient(url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_lines_split_across_reads_are_put_back_together(
    double: OllamaDouble, kind: str
) -> None:
    async with (
        FaultProxy(double.url, piece=7).running() as proxy,
        client_for(kind, proxy.url) as client,
    ):
        stream = client.chat("llama3.2:1b", USER)
        chunks = [chunk async for chunk in stream]
    assert chunks == tokenize(REPLY)
    assert stream.usage is not None and stream.usage.tokens_out == len(chunks)


def between_reads(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=seconds)


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_a_pause_between_chunks_longer_than_the_read_timeout_fails_the_call(
    make_double: Callable[..., OllamaDouble], kind: str
) -> None:
    double = make_double(tokens_per_s=2)  # the first chunk at once, then 0.5 s apart
    async with client_for(kind, double.url, timeout=between_reads(0.2)) as client:
        stream = client.chat("gemma3:1b", USER)
        with pytest.raises(LlmError) as raised:
            await stream.collect()
    failure = raised.value.failure
    assert failure.decision is Decision.RETRY_ELSEWHERE and failure.backend_fault
    assert failure.reason.startswith("backend timed out")
    assert stream.text == tokenize(REPLY)[0]


async def test_the_read_timeout_bounds_each_pause_not_the_whole_call(
    make_double: Callable[..., OllamaDouble],
) -> None:
    double = make_double(tokens_per_s=20)  # 9 chunks 50 ms apart: ~0.4 s in all
    async with OllamaClient(double.url, timeout=between_reads(0.25)) as client:
        text, usage = await client.chat("gemma3:1b", USER).collect()
    assert text == REPLY and usage.wall_s > 0.25


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_a_connection_reset_mid_stream_is_retry_elsewhere(
    make_double: Callable[..., OllamaDouble], kind: str
) -> None:
    double = make_double(tokens_per_s=20)
    async with (
        FaultProxy(double.url, reset_after=3).running() as proxy,
        client_for(kind, proxy.url) as client,
    ):
        stream = client.chat("gemma3:1b", USER)
        with pytest.raises(LlmError) as raised:
            await stream.collect()
    assert proxy.resets == 1
    failure = raised.value.failure
    assert failure.decision is Decision.RETRY_ELSEWHERE and failure.backend_fault
    assert failure.reason.startswith("stream cut mid-way"), failure.reason
    assert 0 < len(stream.text) < len(REPLY) and REPLY.startswith(stream.text)
    assert stream.usage is None


class _Pieces:
    """Stands in for a response's body: `readany` gives the pieces, then b"" (EOF)."""

    def __init__(self, *pieces: bytes) -> None:
        self.content = self
        self._pieces = list(pieces)

    async def readany(self) -> bytes:
        return self._pieces.pop(0) if self._pieces else b""


@pytest.mark.parametrize(
    ("pieces", "lines"),
    [
        ((b'{"a":1}\n{"b"', b":2}\n"), ['{"a":1}', '{"b":2}']),
        ((b"data: x\r\n\r\ndata: y\r", b"\n\r\n"), ["data: x", "", "data: y", "", ""]),
        ((b"one\rtwo\r", b"three"), ["one", "two", "three"]),  # no final newline: kept
        ((b"caf\xc3", b"\xa9\n\xff\n"), ["café", "\ufffd"]),  # UTF-8 split, bad byte replaced
    ],
)
async def test_response_lines(pieces: tuple[bytes, ...], lines: list[str]) -> None:
    got = [line async for line in response_lines(_Pieces(*pieces))]  # type: ignore[arg-type]
    assert [line for line in got if line] == [line for line in lines if line]
