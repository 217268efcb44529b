"""Client for OpenAI-compatible chat completions (vLLM, llama.cpp server, LM Studio,
Ollama's /v1, ...): `POST /v1/chat/completions` with `stream: true`.

The answer is server-sent events: `data: {chunk}` lines, text in
`choices[0].delta.content`, ending with `data: [DONE]`. With
`stream_options: {"include_usage": true}` the last chunk before [DONE] has empty
`choices` and the `usage` (prompt_tokens, completion_tokens). These servers report no
durations, so time to first token and speeds are measured on the client. A stream that
ends without [DONE] was cut. Failures leave as `LlmError`, as in the Ollama client.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp

from whoosh_executor_ollama.failures import (
    Decision,
    Failure,
    LlmError,
    StreamCut,
    classify_exception,
    classify_status,
    classify_stream_error,
    error_text,
)
from whoosh_executor_ollama.http_pools import DEFAULT_TIMEOUT
from whoosh_executor_ollama.ollama_api import TRANSPORT_ERRORS, Format, HttpApiClient, Message
from whoosh_executor_ollama.stream import LlmStream, drain, response_lines
from whoosh_executor_ollama.usage import LlmUsage

# Ollama-style option names a task may carry, mapped to their OpenAI request fields, so a
# task reads the same whichever kind of backend runs it.
_OPTION_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "num_predict": "max_tokens",
    "max_tokens": "max_tokens",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def api_base(endpoint: str) -> str:
    """The `/v1` base of an agent's endpoint, whether or not the config already has it."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def response_format(format: Format | None) -> dict[str, Any] | None:
    """Ollama's `format` ("json" or a schema) as OpenAI's `response_format`."""
    if format is None or format == "":
        return None
    if format == "json":
        return {"type": "json_object"}
    if isinstance(format, Mapping):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(format)}}
    raise ValueError(f"unsupported format {format!r}")


# Where an openai-compatible agent keeps its key (AgentSpec has no field for secrets).
API_KEY_ENV = "OPENAI_API_KEY"


class OpenAICompatClient(HttpApiClient):
    """One OpenAI-compatible backend."""

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = api_base(endpoint)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(session, timeout)

    async def models(self) -> list[str]:
        """Ids of the models the server offers (GET /v1/models)."""
        status, content = await self._request_whole(
            "GET", f"{self.base_url}/models", headers=self._headers
        )
        if status != 200:
            raise LlmError(classify_status(status, content))
        try:
            data = json.loads(content).get("data") or []
            return [str(entry["id"]) for entry in data if isinstance(entry, dict) and "id" in entry]
        except (ValueError, AttributeError) as exc:
            raise LlmError(
                Failure(Decision.RETRY_ELSEWHERE, "/models answered non-JSON", 200, True)
            ) from exc

    def chat(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: Format | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> LlmStream:
        """Streaming chat completion; `options` take Ollama's names (num_predict, ...)."""
        msgs = [dict(m) for m in messages]
        if system is not None and not (msgs and msgs[0].get("role") == "system"):
            msgs.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {
            "model": model,
            "messages": msgs,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for key, value in (options or {}).items():
            field = _OPTION_FIELDS.get(key)
            if field is not None and value is not None:
                body[field] = value
        if (fmt := response_format(format)) is not None:
            body["response_format"] = fmt
        if tools:
            body["tools"] = [dict(t) for t in tools]
        return LlmStream(lambda s: self._produce(s, body, model))

    async def _produce(
        self, stream: LlmStream, body: dict[str, Any], model: str
    ) -> AsyncGenerator[str, None]:
        started = time.perf_counter()
        ttft_s: float | None = None
        usage: Mapping[str, Any] | None = None
        finish_reason: str | None = None
        url = f"{self.base_url}/chat/completions"
        try:
            post = self._http.post(url, json=body, headers=self._headers, allow_redirects=False)
            async with post as resp:
                if resp.status != 200:
                    content = await resp.read()
                    raise LlmError(classify_status(resp.status, content, model=model))
                lines = response_lines(resp)
                async for line in lines:
                    if not line.startswith("data:"):
                        continue  # blank separators, `: keep-alive` comments, `event:` lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        stream.usage = LlmUsage.from_openai(
                            usage,
                            finish_reason=finish_reason,
                            ttft_s=ttft_s,
                            wall_s=time.perf_counter() - started,
                        )
                        await drain(lines)  # so the connection goes back to the pool
                        return
                    chunk = _parse_chunk(data)
                    if "error" in chunk:
                        raise LlmError(classify_stream_error(error_text(data)))
                    if isinstance(chunk.get("usage"), Mapping):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        if choice.get("index", 0) != 0:
                            continue
                        finish_reason = choice.get("finish_reason") or finish_reason
                        delta = choice.get("delta") or {}
                        stream.tool_calls.extend(delta.get("tool_calls") or [])
                        text = delta.get("content")
                        if isinstance(text, str) and text:
                            if ttft_s is None:
                                ttft_s = time.perf_counter() - started
                            yield text
                raise StreamCut("the stream ended without data: [DONE]")
        except LlmError:
            raise
        except (*TRANSPORT_ERRORS, StreamCut) as exc:
            raise LlmError(classify_exception(exc, model=model)) from exc


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise LlmError(
            Failure(Decision.RETRY_ELSEWHERE, f"not a JSON chunk: {data[:200]!r}", 200, True)
        )
    return chunk
