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

import httpx
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
from whoosh_executor_ollama.stream import ClosedOnExit, LlmStream, drain
from whoosh_executor_ollama.usage import LlmUsage

# Generation can pause long between chunks (a cold model load takes minutes), so the read
# timeout is generous; connecting to a LAN server must be quick, so a dead one fails fast.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=30.0, pool=30.0)
# Many concurrent streams per backend must never queue behind the client's own pool, and
# the connections of a busy fleet stay open between calls (a new TCP connection per call
# cost more CPU than the rest of the executor's work on a task). An idle one is let go
# after 1 s, well before servers close theirs (uvicorn: 5 s), so that a call never
# goes out on a connection the server is closing at that moment.
DEFAULT_LIMITS = httpx.Limits(
    max_connections=1000, max_keepalive_connections=256, keepalive_expiry=1.0
)

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
    """One LLM server's HTTP API. Owns its httpx client unless one is passed in (the
    executor passes one pool to every call), and closes only a client it owns."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        timeout: httpx.Timeout | float,
        base_url: str = "",
    ) -> None:
        self._own = client is None
        self._http = client or httpx.AsyncClient(
            base_url=base_url, timeout=timeout, limits=DEFAULT_LIMITS
        )

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()


class OllamaClient(HttpApiClient):
    """One Ollama backend."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(client, timeout, base_url=self.base_url)

    def _url(self, path: str) -> str:
        return path if self._own else f"{self.base_url}{path}"

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
            async with self._http.stream("POST", self._url(path), json=body) as response:
                if response.status_code != 200:
                    content = await response.aread()
                    raise LlmError(classify_status(response.status_code, content, model=model))
                lines = response.aiter_lines()
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
        except (httpx.HTTPError, StreamCut, OSError) as exc:
            raise LlmError(classify_exception(exc, model=model)) from exc

    # -- inventory -------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, model: str | None = None
    ) -> Any:
        try:
            response = await self._http.request(method, self._url(path), json=body)
        except httpx.HTTPError as exc:
            raise LlmError(classify_exception(exc, model=model)) from exc
        if response.status_code != 200:
            raise LlmError(classify_status(response.status_code, response.content, model=model))
        try:
            return response.json()
        except ValueError as exc:
            raise LlmError(
                Failure(Decision.RETRY_ELSEWHERE, f"{path} answered non-JSON", 200, True)
            ) from exc

    async def running(self) -> str:
        """The root's liveness answer ("Ollama is running"): the cheapest reachability check."""
        try:
            response = await self._http.get(self._url("/"))
        except httpx.HTTPError as exc:
            raise LlmError(classify_exception(exc)) from exc
        if response.status_code != 200:
            reason = f"GET / answered {response.status_code}: is this an Ollama server?"
            raise LlmError(Failure(Decision.RETRY_ELSEWHERE, reason, response.status_code, True))
        return response.text.strip()

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
