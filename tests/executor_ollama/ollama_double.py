"""A protocol-faithful Ollama test server (plus a minimal OpenAI-compatible endpoint).

Built from Ollama's public API reference (docs/api.md): the same paths, field names and
units (durations in nanoseconds, `created_at`, `done`, `done_reason`), NDJSON streaming
by default, `{"error": "..."}` bodies. `test_double_faithful.py` drives it with the
official `ollama` and `openai` clients to prove it.

Knobs (`DoubleConfig`, read per request, so a test may change them between calls):
reply text, real tokens per second and time to first token, parallel slots (503 when
full), an `{"error": ...}` line after N chunks, an abrupt disconnect after N chunks.
Options are type-checked as Ollama's `api.Options.FromMap` does (a wrong type is a 500
from its scheduler's error path, with Ollama's message). What the double saw is recorded
(`requests`, `probes`, `finals`, `client_gone`, `completed`).

Served by uvicorn in its own thread and event loop on a free loopback port, so a client
that blocked its loop could not hide it by blocking the server too.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from harness import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

VERSION = "0.12.6"
BUSY = "server busy, please try again.  maximum pending requests exceeded"


@dataclass
class ModelSpec:
    """A model the double pretends to have pulled."""

    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    context_length: int = 8192
    family: str = "llama"
    parameter_size: str = "1B"
    size: int = 1_300_000_000


@dataclass
class DoubleConfig:
    models: dict[str, ModelSpec] = field(
        default_factory=lambda: {
            "llama3.2:1b": ModelSpec(capabilities=["completion", "tools"], context_length=131072),
            "gemma3:1b": ModelSpec(capabilities=["completion"], family="gemma3"),
        }
    )
    reply: str = "The quick brown fox jumps over the lazy dog."
    json_reply: str | None = None  # the answer when a format (JSON) is asked; else {"reply"}
    tokens_per_s: float = 2000.0  # real pacing of chunks
    ttft_s: float = 0.0  # real delay before the first chunk
    parallel: int = 8  # concurrent generations; one more gets 503
    error_after: int | None = None  # send {"error": error_message} after N chunks
    error_message: str = "an error was encountered while running the model: unexpected EOF"
    disconnect_after: int | None = None  # drop the connection after N chunks
    # The server's OLLAMA_KEEP_ALIVE: how long a model stays loaded when a request does not
    # say (counted, unlike Ollama, from the request's start: the tests' calls are short).
    keep_alive_s: float = 300.0
    ps_failures: int = 0  # the next N `/api/ps` requests answer 500 (a server's hiccup)
    # Models removed (`ollama rm`) just as a generation asks for them: listed until then.
    removed_on_request: set[str] = field(default_factory=set)
    # Reported timings (ns per unit), independent of real pacing so tests can be exact.
    load_duration_ns: int = 12_345_678
    prefill_ns_per_token: int = 250_000
    decode_ns_per_token: int = 20_000_000
    # The reply as a function of the request (its prompt, messages, options): per-instance
    # answers, answers in sequence, seeded accuracy for benchmarks. None: `reply`.
    answer: Callable[[dict[str, Any]], str] | None = None


def tokenize(text: str) -> list[str]:
    """Word-ish tokens that join back to the text exactly."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class OllamaDouble:
    """The test server. `start()` / `stop()`; `url` once started."""

    def __init__(self, config: DoubleConfig | None = None) -> None:
        self.config = config or DoubleConfig()
        self.port = free_port()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client_ports: set[int] = set()  # one per TCP connection the clients opened
        self.probes: Counter[str] = Counter()  # inventory calls by path
        self.finals: list[dict[str, Any]] = []
        self.client_gone = 0  # streams whose client went away before the end
        self.completed = 0  # streams sent to their done chunk
        self.chunks_sent = 0
        self.active = 0
        self.loaded: dict[str, float] = {}  # model -> expiry (epoch seconds)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/", self.root, methods=["GET", "HEAD"]),
                Route("/api/version", self.version),
                Route("/api/tags", self.tags),
                Route("/api/ps", self.ps),
                Route("/api/show", self.show, methods=["POST"]),
                Route("/api/chat", self.chat, methods=["POST"]),
                Route("/api/generate", self.generate, methods=["POST"]),
                Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
                Route("/v1/models", self.openai_models),
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Ollama double did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            assert not self._thread.is_alive(), "the Ollama double did not stop"

    # -- inventory -------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        self.probes["/"] += 1
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        self.probes["/api/version"] += 1
        return JSONResponse({"version": VERSION})

    def _details(self, spec: ModelSpec) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": spec.family,
            "families": [spec.family],
            "parameter_size": spec.parameter_size,
            "quantization_level": "Q4_K_M",
        }

    def _digest(self, name: str) -> str:
        return f"{abs(hash(name)):064x}"[-64:]

    async def tags(self, request: Request) -> Response:
        self.probes["/api/tags"] += 1
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": _now(),
                "size": spec.size,
                "digest": self._digest(name),
                "details": self._details(spec),
            }
            for name, spec in self.config.models.items()
        ]
        return JSONResponse({"models": models})

    async def ps(self, request: Request) -> Response:
        self.probes["/api/ps"] += 1
        if self.config.ps_failures > 0:
            self.config.ps_failures -= 1
            return JSONResponse({"error": "ps failed (the double's ps_failures)"}, status_code=500)
        now = time.time()
        models = []
        for name, expiry in list(self.loaded.items()):
            spec = self.config.models.get(name)
            if spec is None or expiry <= now:
                continue
            models.append(
                {
                    "name": name,
                    "model": name,
                    "size": spec.size,
                    "digest": self._digest(name),
                    "details": self._details(spec),
                    "expires_at": datetime.fromtimestamp(expiry, UTC).isoformat(),
                    "size_vram": spec.size,
                    "context_length": 4096,
                }
            )
        return JSONResponse({"models": models})

    async def show(self, request: Request) -> Response:
        self.probes["/api/show"] += 1
        body = await request.json()
        name = body.get("model") or body.get("name") or ""
        spec = self.config.models.get(name)
        if spec is None:
            return self._not_found(name)
        return JSONResponse(
            {
                "modelfile": f"FROM {name}\n",
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": self._details(spec),
                "model_info": {
                    "general.architecture": spec.family,
                    "general.parameter_count": 1_235_814_432,
                    f"{spec.family}.context_length": spec.context_length,
                    f"{spec.family}.embedding_length": 2048,
                },
                "capabilities": spec.capabilities,
                "modified_at": _now(),
            }
        )

    def _not_found(self, name: str) -> Response:
        return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)

    # -- generation ------------------------------------------------------------------

    def _admit(self, body: dict[str, Any], openai: bool = False) -> Response | None:
        """The checks Ollama makes before streaming: model, capability, capacity."""
        name = body.get("model", "")
        if name in self.config.removed_on_request:
            self.config.models.pop(name, None)
        spec = self.config.models.get(name)
        if spec is None:
            if openai:
                message = f'model "{name}" not found, try pulling it first'
                error = {"message": message, "type": "api_error", "param": None, "code": None}
                return JSONResponse({"error": error}, status_code=404)
            return self._not_found(name)
        if body.get("tools") and "tools" not in spec.capabilities:
            return JSONResponse({"error": f"{name} does not support tools"}, status_code=400)
        if not openai and (problem := _option_type_error(body.get("options") or {})):
            return JSONResponse({"error": problem}, status_code=500)
        if self.active >= self.config.parallel:
            return JSONResponse({"error": BUSY}, status_code=503)
        return None

    def _reply_tokens(self, body: dict[str, Any]) -> tuple[list[str], str]:
        text = self.config.answer(body) if self.config.answer else self.config.reply
        if body.get("format") is not None:
            text = self.config.json_reply or json.dumps({"reply": text})
        tokens = tokenize(text)
        options = body.get("options") or {}
        limit = options.get("num_predict", body.get("max_tokens"))
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            return tokens[:limit], "length"
        return tokens, "stop"

    def _prompt_tokens(self, body: dict[str, Any]) -> int:
        words = len(str(body.get("prompt", "")).split()) + len(str(body.get("system", "")).split())
        for message in body.get("messages") or []:
            words += len(str(message.get("content", "")).split())
        return max(words, 1)

    def _stats(self, prompt_tokens: int, eval_count: int) -> dict[str, int]:
        c = self.config
        prompt_eval = prompt_tokens * c.prefill_ns_per_token
        eval_ns = eval_count * c.decode_ns_per_token
        return {
            "total_duration": c.load_duration_ns + prompt_eval + eval_ns + 1_000_000,
            "load_duration": c.load_duration_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_eval,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }

    def _mark_loaded(self, body: dict[str, Any]) -> None:
        keep = body.get("keep_alive")
        seconds = self.config.keep_alive_s
        if isinstance(keep, int | float):
            seconds = float(keep)
        elif isinstance(keep, str) and (m := re.fullmatch(r"(\d+)([smh]?)", keep)):
            seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        if seconds == 0:
            self.loaded.pop(body["model"], None)
        else:
            self.loaded[body["model"]] = time.time() + (seconds if seconds > 0 else 1e9)

    async def chat(self, request: Request) -> Response:
        return await self._ollama(request, "/api/chat")

    async def generate(self, request: Request) -> Response:
        return await self._ollama(request, "/api/generate")

    async def _ollama(self, request: Request, path: str) -> Response:
        body = await request.json()
        self.requests.append((path, body))
        self.client_ports.add(request.client.port if request.client else 0)
        if (refused := self._admit(body)) is not None:
            return refused
        self._mark_loaded(body)
        tokens, done_reason = self._reply_tokens(body)
        model = body["model"]
        spec = self.config.models[model]
        is_chat = path == "/api/chat"
        tool_calls = None
        if is_chat and body.get("tools") and "tools" in spec.capabilities:
            first = body["tools"][0]["function"]["name"]
            tool_calls = [{"function": {"name": first, "arguments": {"city": "Paris"}}}]

        def chunk(text: str) -> dict[str, Any]:
            base: dict[str, Any] = {"model": model, "created_at": _now()}
            if is_chat:
                base["message"] = {"role": "assistant", "content": text}
            else:
                base["response"] = text
            base["done"] = False
            return base

        def final(text: str = "") -> dict[str, Any]:
            last = chunk(text)
            if tool_calls is not None:
                last["message"]["tool_calls"] = tool_calls
            last["done"] = True
            last["done_reason"] = done_reason
            if not is_chat:
                last["context"] = list(range(1, len(tokens) + 1))
            last.update(self._stats(self._prompt_tokens(body), len(tokens)))
            return last

        if body.get("stream", True) is False:
            await asyncio.sleep(self.config.ttft_s + len(tokens) / self.config.tokens_per_s)
            last = final("".join(tokens))
            self.finals.append(last)
            self.completed += 1
            return JSONResponse(last)

        lines = [json.dumps(chunk(t)) + "\n" for t in tokens]
        return _Stream(self, lines, final, "application/x-ndjson", sse=False)

    async def openai_chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("/v1/chat/completions", body))
        self.client_ports.add(request.client.port if request.client else 0)
        if (refused := self._admit(body, openai=True)) is not None:
            return refused
        tokens, done_reason = self._reply_tokens(body)
        model, created = body["model"], int(time.time())
        prompt_tokens = self._prompt_tokens(body)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        base = {"id": "chatcmpl-42", "created": created, "model": model}
        base["system_fingerprint"] = "fp_ollama"
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(tokens)}
            choice = {"index": 0, "message": message, "finish_reason": done_reason}
            return JSONResponse(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )

        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps(data)}\n\n"

        lines = [chunk({"role": "assistant", "content": t}, None) for t in tokens]

        def final(_: str = "") -> list[str]:
            tail = [chunk({"role": "assistant", "content": ""}, done_reason)]
            if (body.get("stream_options") or {}).get("include_usage"):
                data = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                tail.append(f"data: {json.dumps(data)}\n\n")
            tail.append("data: [DONE]\n\n")
            return tail

        return _Stream(self, lines, final, "text/event-stream", sse=True)

    async def openai_models(self, request: Request) -> Response:
        """Ollama's OpenAI-compatible model list."""
        self.probes["/v1/models"] += 1
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "library"}
            for name in self.config.models
        ]
        return JSONResponse({"object": "list", "data": data})


# Ollama's api.Options field types (a subset: the options tasks use).
_OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(("num_ctx", "num_predict", "seed", "top_k", "num_keep", "mirostat"), "int"),
    **dict.fromkeys(("temperature", "top_p", "min_p", "repeat_penalty", "typical_p"), "float"),
    "stop": "strings",
}


def _option_type_error(options: dict[str, Any]) -> str | None:
    """Ollama's FromMap message for the first option of the wrong type; unknown options
    are ignored (Ollama only logs a warning)."""
    for key, value in options.items():
        kind = _OPTION_TYPES.get(key)
        if value is None or kind is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind in ("int", "float") and not number:
            name = "integer" if kind == "int" else "float32"
            return f'option "{key}" must be of type {name}'
        if kind == "strings" and not isinstance(value, list):
            return f'option "{key}" must be of type array'
        if kind == "strings" and not all(isinstance(v, str) for v in value):
            return f'option "{key}" must be of an array of strings'
    return None


class _Stream(Response):
    """A raw ASGI streaming answer: paces chunks, watches for the client going away,
    injects an error line or cuts the connection where configured."""

    def __init__(
        self, double: OllamaDouble, lines: list[str], final: Any, media_type: str, sse: bool
    ) -> None:
        super().__init__(media_type=media_type)
        self.double, self.lines, self.final, self.sse = double, lines, final, sse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        double, config = self.double, self.double.config
        double.active += 1
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", self.media_type.encode())],
                }
            )
            if config.ttft_s and await _wait(gone, config.ttft_s):
                double.client_gone += 1
                return
            for index, line in enumerate(self.lines):
                if config.disconnect_after is not None and index == config.disconnect_after:
                    # Abrupt: no terminating chunk; uvicorn drops the connection.
                    raise ConnectionAbortedError("the double cuts the stream")
                if config.error_after is not None and index == config.error_after:
                    error = json.dumps({"error": config.error_message})
                    text = f"data: {error}\n\n" if self.sse else error + "\n"
                    await send(
                        {"type": "http.response.body", "body": text.encode(), "more_body": False}
                    )
                    return
                await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
                double.chunks_sent += 1
                if index < len(self.lines) - 1 and await _wait(gone, 1 / config.tokens_per_s):
                    double.client_gone += 1
                    return
            if gone.is_set():
                double.client_gone += 1
                return
            final = self.final()
            tail = "".join(final) if isinstance(final, list) else json.dumps(final) + "\n"
            if not self.sse:
                double.finals.append(final)
            await send({"type": "http.response.body", "body": tail.encode(), "more_body": False})
            double.completed += 1
        except ConnectionAbortedError:
            raise
        except OSError:
            double.client_gone += 1  # a send failed: the client went away
        finally:
            watcher.cancel()
            double.active -= 1


async def _wait(gone: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if the client goes away; True when it went away."""
    try:
        await asyncio.wait_for(gone.wait(), seconds)
    except TimeoutError:
        return False
    return True
