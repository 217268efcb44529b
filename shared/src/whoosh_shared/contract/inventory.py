"""What an LLM agent's server has, as its executor last found it, and how fast it ran.

An executor probes each Ollama / OpenAI-compatible agent (`/`, `/api/version`,
`/api/tags`, `/api/ps`, `/api/show`, or `/v1/models`) and reports an `Inventory`; the
coordinator records it on the Agent when it changed, and the scheduler reads it: a task
for model M or capability `tools` goes only where the server has them, a loaded (warm)
model is preferred, an unreachable server gets nothing. `SpeedStats` are folded from
completed tasks' usage, per agent and model.
"""

from __future__ import annotations

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
