"""How long a task should take on an agent, from what its completed tasks measured. Pure.

The numbers are deliberately simple, because the choice they feed only has to rank
agents: prompt tokens are estimated from characters (no tokenizer for every model), and
speeds are exponential moving averages.

How a server's speed changes with the streams it runs at once is learned, not assumed:
servers differ (Ollama's OLLAMA_NUM_PARALLEL slots batch their decoding, so one stream of
four is slower than a lone stream but far from four times slower; a vLLM server batches
better still; a server with independent GPUs per slot does not slow down at all). So each
completed task's per-stream decode speed is kept by the number of streams the agent ran
when it completed (`SpeedStats.stream_tps`). A concurrency never measured is estimated
from the nearest one measured, assuming the old rule between the two (a server shares its
compute between its streams, `1 + (streams - 1) / max_concurrent`): a cautious guess
until the fleet has worked at that concurrency, and the rule used before any was measured.
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


def observe(stats: SpeedStats | None, usage: Usage, streams: int = 1) -> SpeedStats | None:
    """Fold one completed task's usage into the moving averages; None if it measured
    nothing (a plain command, or a server that reported no timings). `streams`: how
    many tasks the agent was running when this one completed (this one included)."""
    if usage.decode_tps <= 0:
        return stats
    base = stats or SpeedStats()
    cold = usage.load_s > COLD_LOAD_S
    streams = max(1, streams)
    by_streams = dict(base.stream_tps)
    by_streams[streams] = _average(by_streams.get(streams, 0.0), usage.decode_tps)
    return SpeedStats(
        samples=base.samples + 1,
        decode_tps=_average(base.decode_tps, usage.decode_tps),
        prefill_tps=_average(base.prefill_tps, usage.prefill_tps),
        load_s=_average(base.load_s, usage.load_s) if cold else base.load_s,
        stream_tps=by_streams,
    )


def stream_tps(stats: SpeedStats, streams: int, max_concurrent: int) -> float:
    """Expected decode speed of one stream while the agent runs `streams` at once."""
    exact = stats.stream_tps.get(streams, 0.0)
    if exact > 0:  # the usual case, asked for dozens of times per placement: no copy
        return exact
    measured = {n: tps for n, tps in stats.stream_tps.items() if tps > 0}
    if not measured:  # only the overall average: the sharing rule from one stream
        return stats.decode_tps / _sharing(streams, max_concurrent)
    nearest = min(measured, key=lambda n: (abs(n - streams), n))
    return measured[nearest] * _sharing(nearest, max_concurrent) / _sharing(streams, max_concurrent)


def _sharing(streams: int, max_concurrent: int) -> float:
    """The cautious rule: how much slower one of `streams` is than a lone stream."""
    return 1 + (max(1, streams) - 1) / max(1, max_concurrent)


def expected_seconds(
    stats: SpeedStats | None,
    tokens_in: int,
    tokens_out: int,
    warm: bool,
    load: int,
    max_concurrent: int,
) -> float:
    """Expected time to finish on this agent when it runs `load` other tasks besides;
    0 when it was never measured, so that an unmeasured agent gets tried (and measured)
    rather than starved. Prompt reading slows down with the streams as decoding does."""
    if stats is None or stats.decode_tps <= 0:
        return 0.0
    speed = stream_tps(stats, load + 1, max_concurrent)
    if speed <= 0:
        return 0.0
    slowdown = stream_tps(stats, 1, max_concurrent) / speed
    seconds = tokens_out / speed
    if stats.prefill_tps > 0:
        seconds += tokens_in / stats.prefill_tps * slowdown
    if not warm:
        seconds += stats.load_s
    return seconds


def _average(old: float, new: float) -> float:
    if new <= 0:
        return old
    if old <= 0:
        return new
    return (1 - SMOOTHING) * old + SMOOTHING * new
