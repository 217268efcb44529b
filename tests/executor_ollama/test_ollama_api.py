"""Our Ollama client against the double: text, usage, options, inventory, failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from executor_ollama.ollama_double import OllamaDouble, tokenize
from whoosh_executor_ollama.failures import Decision, LlmError
from whoosh_executor_ollama.ollama_api import OllamaClient
from whoosh_executor_ollama.usage import LlmUsage

REPLY = "The quick brown fox jumps over the lazy dog."
USER = [{"role": "user", "content": "tell me a story"}]


async def test_chat_chunks_in_order_and_exact_usage(double: OllamaDouble) -> None:
    async with OllamaClient(double.url) as client:
        stream = client.chat("llama3.2:1b", USER, system="be brief")
        chunks = [chunk async for chunk in stream]
    assert chunks == tokenize(REPLY) and stream.text == REPLY
    final = double.finals[-1]
    usage = stream.usage
    assert usage is not None and usage.done_reason == "stop"
    assert usage.tokens_in == final["prompt_eval_count"] == 6  # system + user words
    assert usage.tokens_out == final["eval_count"] == len(chunks)
    assert usage.total_s == final["total_duration"] / 1e9
    assert usage.load_s == final["load_duration"] / 1e9
    assert usage.prefill_tps == final["prompt_eval_count"] / (final["prompt_eval_duration"] / 1e9)
    assert usage.decode_tps == final["eval_count"] / (final["eval_duration"] / 1e9)
    assert usage.decode_tps == pytest.approx(50.0)  # 20 ms per token
    assert usage.ttft_s is not None and 0 < usage.ttft_s <= usage.wall_s
    contract = usage.to_usage()  # what lands in the task's CompleteTask
    assert contract.tokens_out == len(chunks)
    assert contract.decode_tps == usage.decode_tps and contract.prefill_tps == usage.prefill_tps
    assert contract.time_to_first_token_s == usage.ttft_s
    sent = double.requests[-1][1]
    assert sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


async def test_task_options_pass_through(double: OllamaDouble) -> None:
    options = {"num_ctx": 4096, "temperature": 0.2, "seed": 42, "num_predict": 4, "stop": ["\n"]}
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}}
    tool = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    async with OllamaClient(double.url) as client:
        stream = client.chat(
            "llama3.2:1b", USER, options=options, format=schema, keep_alive="1m", tools=[tool]
        )
        text, usage = await stream.collect()
    sent = double.requests[-1][1]
    assert sent["options"] == options and sent["format"] == schema
    assert sent["keep_alive"] == "1m" and sent["tools"] == [tool]
    assert usage.done_reason == "length" and usage.tokens_out == 4
    assert text.startswith('{"reply"')
    assert stream.tool_calls == [{"function": {"name": "weather", "arguments": {"city": "Paris"}}}]


async def test_generate_raw_completion(double: OllamaDouble) -> None:
    async with OllamaClient(double.url) as client:
        stream = client.generate("gemma3:1b", "once upon a time", system="sys", format="json")
        text, usage = await stream.collect()
    sent = double.requests[-1]
    assert sent[0] == "/api/generate" and sent[1]["system"] == "sys" and sent[1]["format"] == "json"
    assert text == '{"reply": "The quick brown fox jumps over the lazy dog."}'
    assert usage.tokens_in == 5 and usage.tokens_out == len(tokenize(text))


async def test_missing_fields_mean_zero() -> None:
    usage = LlmUsage.from_ollama({"done": True}, ttft_s=None, wall_s=0.5)
    assert usage.tokens_in == usage.tokens_out == 0
    assert usage.decode_tps == usage.prefill_tps == usage.total_s == 0.0
    odd = LlmUsage.from_ollama(
        {"eval_count": 10, "eval_duration": 0, "prompt_eval_count": None}, ttft_s=0.1, wall_s=1
    )
    assert odd.tokens_out == 10 and odd.decode_tps == 0.0 and odd.tokens_in == 0


async def test_inventory(double: OllamaDouble) -> None:
    async with OllamaClient(double.url) as client:
        assert await client.version()
        assert {m.name for m in await client.tags()} == {"llama3.2:1b", "gemma3:1b"}
        assert await client.ps() == []
        await client.generate("gemma3:1b", "warm").collect()
        assert [m.name for m in await client.ps()] == ["gemma3:1b"]
        info = await client.show("llama3.2:1b")
        assert info.capabilities == ["completion", "tools"] and info.context_length == 131072
        assert (await client.show("gemma3:1b")).context_length == 8192
        with pytest.raises(LlmError) as raised:
            await client.show("nope:1b")
    assert raised.value.failure.decision is Decision.REJECT_FOR_AGENT


async def test_unknown_model_rejected_for_agent(double: OllamaDouble) -> None:
    async with OllamaClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("mistral:7b", USER).collect()
    failure = raised.value.failure
    assert failure.decision is Decision.REJECT_FOR_AGENT and failure.status == 404
    assert "mistral:7b" in failure.reason and not failure.backend_fault


async def test_missing_capability_fails_without_retry(double: OllamaDouble) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    async with OllamaClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER, tools=[tool]).collect()
    assert raised.value.failure.decision is Decision.FAIL_NO_RETRY
    assert "does not support tools" in raised.value.failure.reason


async def test_error_line_in_200_stream_is_failure(
    make_double: Callable[..., OllamaDouble],
) -> None:
    double = make_double(error_after=3)
    async with OllamaClient(double.url) as client:
        stream = client.chat("gemma3:1b", USER)
        with pytest.raises(LlmError) as raised:
            await stream.collect()
    assert stream.text == "".join(tokenize(REPLY)[:3]) and stream.usage is None
    assert raised.value.failure.decision is Decision.FAIL_NO_RETRY
    assert "unexpected EOF" in raised.value.failure.reason


async def test_busy_error_line_is_retryable(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(error_after=1, error_message="server overloaded, retry later")
    async with OllamaClient(double.url) as client:
        with pytest.raises(LlmError) as raised:
            await client.generate("gemma3:1b", "x").collect()
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE


async def test_slots_full_is_503_retry_elsewhere(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(parallel=1, tokens_per_s=20)
    async with OllamaClient(double.url) as client:
        first = client.chat("gemma3:1b", USER)
        assert await anext(first)  # holds the only slot
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER).collect()
        await first.aclose()
    failure = raised.value.failure
    assert failure.decision is Decision.RETRY_ELSEWHERE and failure.status == 503
    assert failure.open_circuit and "busy" in failure.reason


async def test_abrupt_disconnect_is_retry_elsewhere(
    make_double: Callable[..., OllamaDouble],
) -> None:
    double = make_double(disconnect_after=2)
    async with OllamaClient(double.url) as client:
        stream = client.chat("gemma3:1b", USER)
        with pytest.raises(LlmError) as raised:
            await stream.collect()
    assert stream.text == "".join(tokenize(REPLY)[:2])
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE
    assert "cut" in raised.value.failure.reason and raised.value.failure.backend_fault


async def test_connection_refused_is_retry_elsewhere() -> None:
    from harness import free_port

    async with OllamaClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER).collect()
        with pytest.raises(LlmError) as raised_inventory:
            await client.version()
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE
    assert raised_inventory.value.failure.decision is Decision.RETRY_ELSEWHERE


async def test_read_timeout_is_retry_elsewhere(make_double: Callable[..., OllamaDouble]) -> None:
    double = make_double(ttft_s=5.0)
    async with OllamaClient(double.url, timeout=0.2) as client:
        with pytest.raises(LlmError) as raised:
            await client.chat("gemma3:1b", USER).collect()
    assert raised.value.failure.decision is Decision.RETRY_ELSEWHERE
    assert "timed out" in raised.value.failure.reason
