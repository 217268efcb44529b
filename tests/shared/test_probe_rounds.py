"""The executors' periodic rounds: the loop's pace and stop, and asking for the agents."""

from __future__ import annotations

import asyncio
import itertools
import time

from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.probe_rounds import every_interval, registered_agents


async def test_rounds_repeat_at_the_interval_until_stopped() -> None:
    stopping = asyncio.Event()
    rounds: list[float] = []

    async def one_round() -> None:
        rounds.append(time.monotonic())
        if len(rounds) == 3:
            stopping.set()

    await asyncio.wait_for(every_interval(one_round, 0.1, stopping), 5)
    assert len(rounds) == 3  # none after the stop
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    assert all(0.07 <= gap < 1.0 for gap in gaps), gaps  # 0.1 s ± 20 % jitter


async def test_without_a_coordinator_the_round_gets_none_quickly(bus: Bus) -> None:
    began = time.monotonic()
    assert await registered_agents(bus, timeout_s=0.3) is None  # no coordinator answers
    assert time.monotonic() - began < 3
