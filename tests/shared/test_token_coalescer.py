"""Coalesced tokens: the first chunk is published at once, later ones together, and every
chunk arrives exactly once, in order, whatever the pace; held chunks wait for the claim."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.progress import ProgressPublisher, TokenCoalescer

INTERVAL = 0.02


def published(progress: ProgressPublisher) -> list[ProgressLine]:
    """The lines queued for the bus so far (the publisher is never started here)."""
    lines = []
    while not progress._queue.empty():
        entry = progress._queue.get_nowait()
        assert isinstance(entry, tuple)
        lines.append(ProgressLine.model_validate_json(entry[1]))
    return lines


def coalescer(held: bool = False) -> tuple[TokenCoalescer, ProgressPublisher]:
    progress = ProgressPublisher(None, max_queued=100_000)  # type: ignore[arg-type]
    return TokenCoalescer(progress.sink(uuid.uuid4(), 1), INTERVAL, held=held), progress


async def test_the_first_token_is_published_at_once_and_the_next_ones_together() -> None:
    tokens, progress = coalescer()
    tokens("token", "Hello")
    assert [line.line for line in published(progress)] == ["Hello"]  # no wait at all
    for word in (" there", ",", " world"):
        tokens("token", word)
    assert published(progress) == []  # gathered, not sent one by one
    await asyncio.sleep(INTERVAL * 3)
    assert [line.line for line in published(progress)] == [" there, world"]  # by the timer


async def test_a_final_flush_sends_what_is_left_at_once() -> None:
    tokens, progress = coalescer()
    tokens("token", "a")
    tokens("token", "b")
    tokens.flush()
    assert [line.line for line in published(progress)] == ["a", "b"]
    tokens.flush()
    assert published(progress) == []  # nothing twice


@pytest.mark.parametrize("seed", range(5))
async def test_every_chunk_arrives_once_in_order_at_any_pace(seed: int) -> None:
    pick = random.Random(seed)
    tokens, progress = coalescer()
    chunks = [f"<{i}>" for i in range(300)]
    for chunk in chunks:
        tokens("token", chunk)
        if pick.random() < 0.1:
            await asyncio.sleep(pick.choice([0, 0.001, 0.005, INTERVAL]))
    tokens.flush()
    lines = published(progress)
    assert "".join(line.line for line in lines) == "".join(chunks)
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    assert len(lines) < len(chunks)


async def test_held_tokens_wait_for_the_claim_then_go_at_once() -> None:
    tokens, progress = coalescer(held=True)
    tokens("token", "early ")
    tokens("token", "bird")
    tokens.flush()  # the call ended before the claim was answered
    await asyncio.sleep(INTERVAL * 2)
    assert published(progress) == []
    tokens.release()
    assert [line.line for line in published(progress)] == ["early bird"]
    tokens("token", "!")
    await asyncio.sleep(INTERVAL * 2)
    assert [line.line for line in published(progress)] == ["!"]


async def test_a_refused_claim_publishes_nothing() -> None:
    tokens, progress = coalescer(held=True)
    tokens("token", "not ours")
    tokens.discard()
    tokens.flush()
    await asyncio.sleep(INTERVAL * 2)
    assert published(progress) == []


async def test_a_change_of_stream_sends_what_was_gathered_first() -> None:
    tokens, progress = coalescer()
    tokens("token", "a")
    tokens("token", "b")
    tokens("thinking", "hmm")
    tokens.flush()
    assert [(line.stream, line.line) for line in published(progress)] == [
        ("token", "a"),
        ("token", "b"),
        ("thinking", "hmm"),
    ]


async def test_flushed_waits_until_earlier_lines_reached_the_connection() -> None:
    sent: list[bytes] = []

    class Connection:
        async def publish(self, subject: str, data: bytes) -> None:
            await asyncio.sleep(0.001)
            sent.append(data)

    progress = ProgressPublisher(Connection())  # type: ignore[arg-type]
    progress.start()
    try:
        tokens = TokenCoalescer(progress.sink(uuid.uuid4(), 1), INTERVAL)
        for i in range(5):
            tokens("token", str(i))
        tokens.flush()
        await progress.flushed()
        text = "".join(ProgressLine.model_validate_json(d).line for d in sent)
        assert text == "01234"
    finally:
        await progress.close()
