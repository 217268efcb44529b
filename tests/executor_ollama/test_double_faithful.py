"""The double speaks Ollama's API as the official clients understand it.

If these pass, tests of our own clients against the double test them against the
protocol, not against our reading of it.
"""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest
from executor_ollama.ollama_double import OllamaDouble

REPLY = "The quick brown fox jumps over the lazy dog."


async def test_root_and_version(double: OllamaDouble) -> None:
    async with httpx.AsyncClient(base_url=double.url) as http:
        root = await http.get("/")
        assert root.status_code == 200 and root.text == "Ollama is running"
        assert (await http.get("/api/version")).json()["version"]


async def test_chat_streaming(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    parts = []
    async for part in await client.chat(
        model="llama3.2:1b",
        messages=[{"role": "user", "content": "say something"}],
        stream=True,
        options={"temperature": 0, "seed": 7},
    ):
        parts.append(part)
    assert "".join(p.message.content or "" for p in parts) == REPLY
    assert all(not p.done for p in parts[:-1])
    last = parts[-1]
    assert last.done and last.done_reason == "stop" and last.created_at
    assert last.eval_count == len(parts) - 1 and last.eval_duration and last.total_duration
    assert last.prompt_eval_count == 2 and last.load_duration
    assert double.requests[-1][1]["options"] == {"temperature": 0, "seed": 7}


async def test_chat_non_streaming_with_tools(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    tool = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    response = await client.chat(
        model="llama3.2:1b", messages=[{"role": "user", "content": "hi"}], tools=[tool]
    )
    assert response.done and response.message.content == REPLY
    assert response.message.tool_calls[0].function.name == "weather"


async def test_generate_stream_and_not(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    whole = await client.generate(model="gemma3:1b", prompt="once upon", options={"num_predict": 3})
    assert whole.done and whole.done_reason == "length" and whole.response == "The quick brown "
    assert whole.context
    parts = [p async for p in await client.generate(model="gemma3:1b", prompt="x", stream=True)]
    assert "".join(p.response for p in parts) == REPLY and parts[-1].done


async def test_list_ps_show(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    listed = await client.list()
    assert {m.model for m in listed.models} == {"llama3.2:1b", "gemma3:1b"}
    assert listed.models[0].details.family == "llama" and listed.models[0].size
    assert (await client.ps()).models == []
    await client.generate(model="gemma3:1b", prompt="warm up", keep_alive="10m")
    running = await client.ps()
    assert [m.model for m in running.models] == ["gemma3:1b"] and running.models[0].expires_at
    shown = await client.show("llama3.2:1b")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo["llama.context_length"] == 131072
    assert shown.details.family == "llama"


async def test_unknown_model_is_404(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    with pytest.raises(ollama.ResponseError) as raised:
        await client.chat(model="nope:7b", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 404 and "nope:7b" in raised.value.error
    with pytest.raises(ollama.ResponseError) as raised:
        async for _ in await client.generate(model="nope:7b", prompt="x", stream=True):
            pass
    assert raised.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as raised:
        await client.show("nope:7b")
    assert raised.value.status_code == 404


async def test_missing_capability_is_400(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(ollama.ResponseError) as raised:
        await client.chat(
            model="gemma3:1b", messages=[{"role": "user", "content": "x"}], tools=[tool]
        )
    assert raised.value.status_code == 400 and "does not support tools" in raised.value.error


async def test_error_line_in_stream(make_double) -> None:  # type: ignore[no-untyped-def]
    double = make_double(error_after=2)
    client = ollama.AsyncClient(host=double.url)
    seen = []
    with pytest.raises(ollama.ResponseError) as raised:
        async for part in await client.chat(
            model="gemma3:1b", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            seen.append(part)
    assert len(seen) == 2 and "unexpected EOF" in raised.value.error


async def test_openai_client_streaming_with_usage(double: OllamaDouble) -> None:
    client = openai.AsyncOpenAI(base_url=f"{double.url}/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="llama3.2:1b",
        messages=[{"role": "user", "content": "three little words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.completion_tokens == len(chunks) - 2
    whole = await client.chat.completions.create(
        model="llama3.2:1b", messages=[{"role": "user", "content": "x"}]
    )
    assert whole.choices[0].message.content == REPLY and whole.usage.completion_tokens
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    await client.close()


async def test_a_wrongly_typed_option_is_refused_as_ollama_does(double: OllamaDouble) -> None:
    client = ollama.AsyncClient(host=double.url)
    with pytest.raises(ollama.ResponseError) as raised:
        await client.chat(
            model="gemma3:1b",
            messages=[{"role": "user", "content": "x"}],
            options={"temperature": "hot"},  # type: ignore[dict-item]
        )
    assert raised.value.status_code == 500
    assert raised.value.error == 'option "temperature" must be of type float32'
    # Unknown options are ignored (Ollama only logs them), right types pass.
    answer = await client.chat(
        model="gemma3:1b",
        messages=[{"role": "user", "content": "x"}],
        options={"temperature": 0.2, "stop": ["\n"], "no_such_option": 1},  # type: ignore[typeddict-unknown-key]
    )
    assert answer.message.content == REPLY


async def test_openai_client_lists_models(double: OllamaDouble) -> None:
    client = openai.AsyncOpenAI(base_url=f"{double.url}/v1", api_key="x", max_retries=0)
    page = await client.models.list()
    assert {m.id for m in page.data} == set(double.config.models)
    await client.close()
