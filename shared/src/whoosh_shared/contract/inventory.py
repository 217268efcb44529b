"""What an LLM agent's server has, as its executor last found it, and how fast it ran.

An executor probes each Ollama / OpenAI-compatible agent (`/`, `/api/version`,
`/api/tags`, `/api/ps`, `/api/show`, or `/v1/models`) and reports an `Inventory`; the
coordinator records it on the Agent when it changed, and the scheduler reads it: a task
for model M or capability `tools` goes only where the server has them, a loaded (warm)
model is preferred, an unreachable server gets nothing. `SpeedStats` are folded from
completed tasks' usage, per agent and model; `Warmth` from probes, slots and completions:
Ollama unloads a model its keep-alive after its last use, and the coordinator must not
count on it being loaded after that.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field

from whoosh_shared.contract.agents import Strict

MAX_MODELS = 500  # a server listing more is cut: the report must stay one small message


def model_key(name: str) -> str:
    """Ollama's name for a model: a name without a tag means the `latest` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class ModelFacts(Strict):
    """One model on one server: what it can do and how much it can read."""

    capabilities: list[str] = Field(
        default_factory=list,
        description="as the server names them: completion, tools, vision, thinking, embedding",
    )
    context_length: int | None = Field(default=None, ge=1, description="max tokens, /api/show")
    size_bytes: int = Field(default=0, ge=0)


class Inventory(Strict):
    """One probe's findings. Equal findings are not recorded twice."""

    reachable: bool
    reason: str | None = Field(default=None, max_length=500, description="why not reachable")
    version: str | None = Field(default=None, max_length=100)
    models: dict[str, ModelFacts] = Field(default_factory=dict, max_length=MAX_MODELS)
    loaded: list[str] = Field(default_factory=list, description="models in memory now (warm)")
    expires: dict[str, datetime] = Field(
        default_factory=dict,
        max_length=MAX_MODELS,
        description="per loaded model, when the server unloads it unless it is used again "
        "(Ollama's /api/ps expires_at: its last use + keep_alive); absent: not reported",
    )

    def facts(self, model: str) -> ModelFacts | None:
        return self.models.get(model) or self.models.get(model_key(model))

    def is_loaded(self, model: str) -> bool:
        return model in self.loaded or model_key(model) in self.loaded


class SpeedStats(Strict):
    """Moving averages of one model's measured speed on one agent."""

    samples: int = Field(default=0, ge=0)
    decode_tps: float = Field(default=0.0, ge=0, description="generated tokens per second")
    prefill_tps: float = Field(default=0.0, ge=0, description="prompt tokens per second")
    load_s: float = Field(default=0.0, ge=0, description="seconds to load the model when cold")
    stream_tps: dict[int, float] = Field(
        default_factory=dict,
        description="generated tokens per second of one stream, by how many streams the "
        "agent ran at once (its load when the task completed): how it shares its compute",
    )


DEFAULT_KEEP_ALIVE_S = 300.0
"""Ollama's keep_alive when neither the request nor OLLAMA_KEEP_ALIVE sets one (5 min)."""

FOREVER_S = 10 * 365 * 86400.0
"""A negative keep_alive keeps the model loaded for ever; counted as ten years."""


class Warmth(Strict):
    """Whether one model is in one agent's server memory, as the coordinator folds it from
    events (probes, slots, completions): loaded while work runs on it, then until `until`."""

    until: datetime | None = Field(
        default=None, description="when the server unloads it if unused; None: not loaded"
    )
    running: int = Field(default=0, ge=0, description="tasks in flight with it (never unloaded)")
    last_used: datetime | None = Field(default=None, description="last completion with it")
    asked: bool = Field(default=False, description="that completion's task set its own keep_alive")
    ended_version: int | None = Field(
        default=None, description="the agent's version when work with it last ended"
    )
    keep_alive_s: float | None = Field(
        default=None,
        ge=0,
        description="the server's keep-alive for it, as a probe's expiry implied (expires_at "
        "minus the last use); None: not seen yet (Ollama's default, 5 min, is assumed)",
    )


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: str | float | None) -> float | None:
    """A request's keep_alive as Ollama reads it, in seconds: a number of seconds or a Go
    duration ("5m", "1h30m", "90s"); negative: for ever; None (or unreadable): not set."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        text = text.lstrip("+-")
        try:
            seconds = sign * float(text)  # a bare number: seconds
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                return None
            seconds = sign * sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds != seconds:  # NaN
        return None
    return FOREVER_S if seconds < 0 else min(seconds, FOREVER_S)
