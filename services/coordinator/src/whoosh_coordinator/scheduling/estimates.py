"""How long a task should take on an agent, from what its completed tasks measured. Pure.

The numbers are deliberately simple, because the choice they feed only has to rank
agents: prompt tokens are estimated from characters (no tokenizer for every model),
speeds are exponential moving averages, and a busy server is assumed to share its
compute between the streams it runs (Ollama's OLLAMA_NUM_PARALLEL slots do).
"""

from __future__ import annotations

from math import ceil

from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.commands import Usage
from whoosh_shared.contract.inventory import SpeedStats

CHARS_PER_TOKEN = 4  # English text and code average 3-4; fewer tokens means fewer rejections
DEFAULT_OUTPUT_TOKENS = 256  # when the task sets no num_predict
SMOOTHING = 0.3  # weight of the newest sample in the moving averages
COLD_LOAD_S = 0.5  # a reported load time above this was a real (cold) model load


def prompt_tokens(*texts: str | None, extra_chars: int = 0) -> int:
    """Estimated tokens of a prompt (and system prompt): one per 4 characters.
    `extra_chars`: a prompt held by reference counts its characters, not its preview's."""
    return ceil((sum(len(text) for text in texts if text) + extra_chars) / CHARS_PER_TOKEN)


def task_prompt_tokens(prompt: str, ref: BlobRef | None, system: str | None) -> int:
    if ref is not None:
        return prompt_tokens(system, extra_chars=ref.chars)
    return prompt_tokens(prompt, system)


def observe(stats: SpeedStats | None, usage: Usage) -> SpeedStats | None:
    """Fold one completed task's usage into the moving averages; None if it measured
    nothing (a plain command, or a server that reported no timings)."""
    if usage.decode_tps <= 0:
        return stats
    base = stats or SpeedStats()
    cold = usage.load_s > COLD_LOAD_S
    return SpeedStats(
        samples=base.samples + 1,
        decode_tps=_average(base.decode_tps, usage.decode_tps),
        prefill_tps=_average(base.prefill_tps, usage.prefill_tps),
        load_s=_average(base.load_s, usage.load_s) if cold else base.load_s,
    )


def expected_seconds(
    stats: SpeedStats | None,
    tokens_in: int,
    tokens_out: int,
    warm: bool,
    load: int,
    max_concurrent: int,
) -> float:
    """Expected time to finish on this agent; 0 when it was never measured, so that an
    unmeasured agent gets tried (and measured) rather than starved."""
    if stats is None or stats.decode_tps <= 0:
        return 0.0
    seconds = tokens_out / stats.decode_tps
    if stats.prefill_tps > 0:
        seconds += tokens_in / stats.prefill_tps
    if not warm:
        seconds += stats.load_s
    return seconds * (1 + load / max_concurrent)


def _average(old: float, new: float) -> float:
    if new <= 0:
        return old
    if old <= 0:
        return new
    return (1 - SMOOTHING) * old + SMOOTHING * new
