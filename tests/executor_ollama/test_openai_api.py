"""Our OpenAI-compatible client against the double's /v1/chat/completions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from executor_ollama.ollama_double import OllamaDouble, tokenize
from whoosh_executor_ollama.failures import Decision, LlmError
from whoosh_executor_ollama.openai_api import OpenAICompatClient, api_base, response_format

REPLY = "The quick brown fox jumps over the lazy dog."
USER = [{"role": "user", "content": "three little words"}]


async def test_stream_text_and_usage(double: OllamaDouble) -> None:
    async with OpenAICompatClient(double.url, api_key="secret") as client:
        stream = client.chat(
            "llama3.2:1b", USER, system="be brief", options={"temperature": 0, "num_predict": 5}
        )
        chunks = [chunk async for chunk in stream]
    assert chunks == tokenize(REPLY)[:5]
    usage = stream.usage
    assert usage is not None and usage.done_reason == "length"
    assert usage.tokens_in == 5 and usage.tokens_out == 5  # usage from the final chunk
    assert usage.ttft_s is not None and 0 < usage.ttft_s <= usage.wall_s == usage.total_s
    assert usage.decode_tps == pytest.approx(5 / (usage.wall_s - usage.ttft_s))
    sent = double.requests[-1][1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 5 and sent["temperature"] == 0
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


async def test_endpoint_with_or_without_v1(double: OllamaDouble) -> None:
    assert api_base("http://h:8000") == api_base("http://h:8000/v1/") == "http://h:8000/v1"
    async with OpenAICompatClient(f"{double.url}/v1") as client:
        text, _ = await client.chat("gemma3:1b", USER).collect()
    assert text == REPLY


def test_response_format_mapping() -> None:
    assert response_format("json") == {"type": "json_object"}
    assert response_format(None) is None
    schema = {"type": "object"}
    assert response_format(schema) == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


async def test_unknown_model_rejected_for_agent(double: OllamaDouble) -> None:
    async with OpenAICompatClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("qwen:72b", USER).collect()
    assert raised.value.failure.decision is Decision.REJECT_FOR_AGENT
    assert "qwen:72b" in raised.value.failure.reason


async def test_error_in_stream_and_cut_stream(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(error_after=2)
    async with OpenAICompatClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER).collect()
        assert raised.value.failure.decision is Decision.FAIL_NO_RETRY
        double.config.error_after = None
        double.config.disconnect_after = 3
        stream = client.chat("gemma3:1b", USER)
        with pytest.raises(LlmError) as raised:
            await stream.collect()
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE
    assert stream.text == "".join(tokenize(REPLY)[:3])


async def test_busy_is_retry_elsewhere(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(parallel=0)
    async with OpenAICompatClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER).collect()
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE
    assert raised.value.failure.status == 503
