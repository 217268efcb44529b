"""Usage of one LLM call: tokens, durations and speeds, from the server's figures.

Ollama reports durations in nanoseconds on the final (`done: true`) chunk and omits
fields it has nothing for, so every field defaults to 0 here and every division guards
against a zero duration: a usage record must never crash the report of a finished task.
OpenAI-compatible servers report only token counts, so their timings are measured on
the client; both end up in the same `LlmUsage`, which is what the scheduler compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from whoosh_shared.contract.commands import Usage

NS_PER_S = 1_000_000_000


def ns_to_s(value: Any) -> float:
    """Nanoseconds (int, possibly missing or null) to seconds; anything unusable is 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return 0.0
    return value / NS_PER_S


def count(value: Any) -> int:
    """A token count that may be missing, null or nonsense: 0 unless a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def tokens_per_second(tokens: int, seconds: float) -> float:
    """Throughput; zero (or negative) time gives 0 rather than a ZeroDivisionError or inf."""
    if tokens <= 0 or seconds <= 0:
        return 0.0
    return tokens / seconds


class LlmUsage(BaseModel):
    """What one call cost and how fast it ran; seconds and tokens per second throughout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    done_reason: str | None = Field(default=None, description="stop, length, load, ...")
    tokens_in: int = Field(default=0, ge=0, description="prompt tokens evaluated")
    tokens_out: int = Field(default=0, ge=0, description="tokens generated")
    total_s: float = Field(default=0.0, ge=0, description="server total (Ollama) or wall")
    load_s: float = Field(default=0.0, ge=0, description="model load time (Ollama only)")
    prefill_s: float = Field(default=0.0, ge=0, description="prompt evaluation time")
    decode_s: float = Field(default=0.0, ge=0, description="generation time")
    prefill_tps: float = Field(default=0.0, ge=0, description="prompt tokens per second")
    decode_tps: float = Field(default=0.0, ge=0, description="generated tokens per second")
    ttft_s: float | None = Field(
        default=None, ge=0, description="time to first text chunk, client-side; None if none"
    )
    wall_s: float = Field(default=0.0, ge=0, description="request to end of stream, client-side")

    @classmethod
    def from_ollama(
        cls, final: Mapping[str, Any], *, ttft_s: float | None, wall_s: float
    ) -> LlmUsage:
        """From Ollama's `done: true` chunk (durations in ns; a missing field means 0)."""
        tokens_in = count(final.get("prompt_eval_count"))
        tokens_out = count(final.get("eval_count"))
        prefill_s = ns_to_s(final.get("prompt_eval_duration"))
        decode_s = ns_to_s(final.get("eval_duration"))
        done_reason = final.get("done_reason")
        return cls(
            done_reason=done_reason if isinstance(done_reason, str) else None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            total_s=ns_to_s(final.get("total_duration")),
            load_s=ns_to_s(final.get("load_duration")),
            prefill_s=prefill_s,
            decode_s=decode_s,
            prefill_tps=tokens_per_second(tokens_in, prefill_s),
            decode_tps=tokens_per_second(tokens_out, decode_s),
            ttft_s=ttft_s,
            wall_s=max(wall_s, 0.0),
        )

    @classmethod
    def from_openai(
        cls,
        usage: Mapping[str, Any] | None,
        *,
        finish_reason: str | None,
        ttft_s: float | None,
        wall_s: float,
    ) -> LlmUsage:
        """From an OpenAI `usage` object plus client-side timing.

        The server gives no durations, so prefill is approximated by the time to first
        token (it includes queueing and the network) and decode by the rest of the stream.
        """
        usage = usage or {}
        tokens_in = count(usage.get("prompt_tokens"))
        tokens_out = count(usage.get("completion_tokens"))
        wall_s = max(wall_s, 0.0)
        prefill_s = ttft_s if ttft_s is not None else 0.0
        decode_s = max(wall_s - prefill_s, 0.0) if ttft_s is not None else 0.0
        return cls(
            done_reason=finish_reason,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            total_s=wall_s,
            prefill_s=prefill_s,
            decode_s=decode_s,
            prefill_tps=tokens_per_second(tokens_in, prefill_s),
            decode_tps=tokens_per_second(tokens_out, decode_s),
            ttft_s=ttft_s,
            wall_s=wall_s,
        )

    def to_usage(self) -> Usage:
        """The contract's `Usage` for CompleteTask / FailTask (cost is 0 on own hardware)."""
        return Usage(
            duration_s=self.wall_s,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            time_to_first_token_s=self.ttft_s or 0.0,
            load_s=self.load_s,
            prefill_tps=self.prefill_tps,
            decode_tps=self.decode_tps,
        )
