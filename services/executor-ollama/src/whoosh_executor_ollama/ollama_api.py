"""Client for Ollama's native HTTP API (docs/api.md of the ollama repository).

Streaming `POST /api/chat` and `POST /api/generate` answer newline-delimited JSON: text
chunks (`message.content` / `response`) with `done: false`, then one `done: true` chunk
carrying `done_reason` and the timings in nanoseconds. An `{"error": "..."}` line may
appear inside a 200 stream (the status was sent before the failure) and is a failure.
Every failure leaves this module as an `LlmError` carrying its classified `Failure`, so
the executor decides from one type whatever went wrong (HTTP status, transport, stream).

Also the inventory calls the executor needs to describe an agent: version, tags (pulled
models), ps (loaded models) and show (capabilities and context length of a model).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

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
from whoosh_executor_ollama.http_pools import DEFAULT_TIMEOUT, new_session
from whoosh_executor_ollama.stream import ClosedOnExit, LlmStream, drain, response_lines
from whoosh_executor_ollama.usage import LlmUsage

# What the transport raises that the clients turn into an `LlmError` (a read timeout is an
# aiohttp.SocketTimeoutError, both a ClientError and a TimeoutError, itself an OSError).
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError)

Format = str | Mapping[str, Any]  # "json" or a JSON schema
Message = Mapping[str, Any]


class _Tolerant(BaseModel):
    """Server answers: read what we know, ignore what newer servers add."""

    model_config = ConfigDict(extra="ignore")


class ModelEntry(_Tolerant):
    """One pulled model, from /api/tags."""

    name: str
    model: str | None = None
    size: int = 0
    digest: str | None = None
    modified_at: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RunningModel(_Tolerant):
    """One model loaded in memory, from /api/ps."""

    name: str
    model: str | None = None
    size: int = 0
    size_vram: int = 0
    expires_at: str | None = None
    context_length: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ModelInfo(_Tolerant):
    """What /api/show says about a model that matters for scheduling."""

    name: str
    capabilities: list[str] = Field(default_factory=list)  # completion, tools, vision, ...
    context_length: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    parameters: str | None = None


def context_length_of(model_info: Mapping[str, Any]) -> int | None:
    """`<architecture>.context_length` from /api/show's model_info; any `*.context_length`
    when the architecture key is missing."""
    arch = model_info.get("general.architecture")
    if isinstance(arch, str):
        value = model_info.get(f"{arch}.context_length")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    for key, value in model_info.items():
        if key.endswith(".context_length") and isinstance(value, int):
            return value
    return None


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


class HttpApiClient(ClosedOnExit):
    """One LLM server's HTTP API. Owns its aiohttp session unless one is passed in (the
    executor passes its server's pool to every call), and closes only a session it owns.
    Redirects are not followed (a 3xx is an answer like any other status)."""

    def __init__(
        self, session: aiohttp.ClientSession | None, timeout: aiohttp.ClientTimeout | float
    ) -> None:
        self._own = session is None
        self._http = session if session is not None else new_session(timeout)

    async def aclose(self) -> None:
        if self._own:
            await self._http.close()

    async def _request_whole(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> tuple[int, bytes]:
        """A whole (small) answer: its status and body; transport failures as `LlmError`."""
        try:
            async with self._http.request(
                method, url, json=body, headers=headers, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TRANSPORT_ERRORS as exc:
            raise LlmError(classify_exception(exc, model=model)) from exc


class OllamaClient(HttpApiClient):
    """One Ollama backend."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(session, timeout)

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- generation ------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: Format | None = None,
        keep_alive: str | float | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        think: bool | None = None,
    ) -> LlmStream:
        """Streaming /api/chat. /api/chat has no `system` field: a system prompt becomes
        the first message (unless the messages already start with one)."""
        msgs = [dict(m) for m in messages]
        if system is not None and not (msgs and msgs[0].get("role") == "system"):
            msgs.insert(0, {"role": "system", "content": system})
        body = _without_none(
            {
                "model": model,
                "messages": msgs,
                "stream": True,
                "options": dict(options) if options else None,
                "format": format,
                "keep_alive": keep_alive,
                "tools": [dict(t) for t in tools] if tools else None,
                "think": think,
            }
        )
        return LlmStream(lambda s: self._produce(s, "/api/chat", body, model, _chat_text))

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: Format | None = None,
        keep_alive: str | float | None = None,
        raw: bool | None = None,
        suffix: str | None = None,
    ) -> LlmStream:
        """Streaming /api/generate, for tasks that ask for a raw completion."""
        body = _without_none(
            {
                "model": model,
                "prompt": prompt,
                "stream": True,
                "system": system,
                "options": dict(options) if options else None,
                "format": format,
                "keep_alive": keep_alive,
                "raw": raw,
                "suffix": suffix,
            }
        )
        return LlmStream(lambda s: self._produce(s, "/api/generate", body, model, _generate_text))

    async def _produce(
        self,
        stream: LlmStream,
        path: str,
        body: dict[str, Any],
        model: str,
        text_of: Callable[[dict[str, Any], LlmStream], str],
    ) -> AsyncGenerator[str, None]:
        started = time.perf_counter()
        ttft_s: float | None = None
        try:
            post = self._http.post(self._url(path), json=body, allow_redirects=False)
            async with post as response:
                if response.status != 200:
                    content = await response.read()
                    raise LlmError(classify_status(response.status, content, model=model))
                lines = response_lines(response)
                async for line in lines:
                    if not line.strip():
                        continue
                    part = _parse_line(line)
                    if "error" in part:
                        raise LlmError(classify_stream_error(error_text(line)))
                    text = text_of(part, stream)
                    if text:
                        if ttft_s is None:
                            ttft_s = time.perf_counter() - started
                        yield text
                    if part.get("done"):
                        stream.usage = LlmUsage.from_ollama(
                            part, ttft_s=ttft_s, wall_s=time.perf_counter() - started
                        )
                        await drain(lines)  # so the connection goes back to the pool
                        return
                raise StreamCut("the stream ended without its done chunk")
        except LlmError:
            raise
        except (*TRANSPORT_ERRORS, StreamCut) as exc:
            raise LlmError(classify_exception(exc, model=model)) from exc

    # -- inventory -------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, model: str | None = None
    ) -> Any:
        status, content = await self._request_whole(method, self._url(path), body, model=model)
        if status != 200:
            raise LlmError(classify_status(status, content, model=model))
        try:
            return json.loads(content)
        except ValueError as exc:
            raise LlmError(
                Failure(Decision.RETRY_ELSEWHERE, f"{path} answered non-JSON", 200, True)
            ) from exc

    async def running(self) -> str:
        """The root's liveness answer ("Ollama is running"): the cheapest reachability check."""
        status, content = await self._request_whole("GET", self._url("/"))
        if status != 200:
            reason = f"GET / answered {status}: is this an Ollama server?"
            raise LlmError(Failure(Decision.RETRY_ELSEWHERE, reason, status, True))
        return content.decode("utf-8", "replace").strip()

    async def version(self) -> str:
        """The server's version (GET /api/version)."""
        data = await self._call("GET", "/api/version")
        return str(data.get("version", ""))

    async def tags(self) -> list[ModelEntry]:
        """Models pulled on the server (GET /api/tags)."""
        data = await self._call("GET", "/api/tags")
        return [ModelEntry.model_validate(m) for m in data.get("models") or []]

    async def ps(self) -> list[RunningModel]:
        """Models loaded in memory now (GET /api/ps)."""
        data = await self._call("GET", "/api/ps")
        return [RunningModel.model_validate(m) for m in data.get("models") or []]

    async def show(self, model: str) -> ModelInfo:
        """Capabilities and context length of one model (POST /api/show)."""
        data = await self._call("POST", "/api/show", {"model": model}, model=model)
        return ModelInfo(
            name=model,
            capabilities=[str(c) for c in data.get("capabilities") or []],
            context_length=context_length_of(data.get("model_info") or {}),
            details=data.get("details") or {},
            parameters=data.get("parameters"),
        )


def _parse_line(line: str) -> dict[str, Any]:
    try:
        part = json.loads(line)
    except ValueError:
        part = None
    if not isinstance(part, dict):
        raise LlmError(
            Failure(Decision.RETRY_ELSEWHERE, f"not an NDJSON object: {line[:200]!r}", 200, True)
        )
    return part


def _chat_text(part: dict[str, Any], stream: LlmStream) -> str:
    message = part.get("message") or {}
    stream.tool_calls.extend(message.get("tool_calls") or [])
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _generate_text(part: dict[str, Any], stream: LlmStream) -> str:
    text = part.get("response")
    return text if isinstance(text, str) else ""
