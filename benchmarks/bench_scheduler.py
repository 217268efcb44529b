#!/usr/bin/env python
"""One scheduling pass over a long queue: the coordinator's `plan()` against a plain
loop that asks `choose()` for every queued task (the same rules without the memory of
needs that found no agent in this pass).

    .venv/bin/python benchmarks/bench_scheduler.py [--queued 1000,10000,50000] [--agents 20]

The fleet: half the agents serve a big model and are full, half serve a small model and
have free slots. The queue: every task wants the big model (prompts of varied length),
so nothing can be placed: the worst case, which the coordinator meets on every event
while a popular model is saturated. Pure Python, no processes; the table is printed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from uuid import uuid4

from whoosh_coordinator.scheduling.scheduler import Needs, choose, plan
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import AgentView, TaskView

NOW = datetime.now(UTC)


def fleet(size: int) -> list[AgentView]:
    agents = []
    for i in range(size):
        full = i % 2 == 0
        spec = AgentSpec(
            name=f"gpu{i}",
            type="ollama",
            endpoint=f"http://127.0.0.1:{11434 + i}",
            model="big:70b" if full else "small:1b",
            max_concurrent=2,
        )
        busy = [uuid4(), uuid4()] if full else []
        agents.append(AgentView(id=uuid4(), spec=spec, enabled=True, in_flight=busy))
    return agents


def queue(size: int) -> list[TaskView]:
    pick = random.Random(size)
    return [
        TaskView(
            id=uuid4(),
            status=TaskStatus.QUEUED,
            prompt="word " * pick.randint(1, 400),
            priority=5,
            capabilities=[],
            timeout_s=60.0,
            max_attempts=1,
            submitted_at=NOW,
            sequence=n,
            model="big:70b",
        )
        for n in range(size)
    ]


def naive(queued: list[TaskView], agents: list[AgentView]) -> int:
    load = {a.id: a.load for a in agents}
    placed = 0
    for task in queued:
        chosen = choose(Needs.of(task), agents, load)
        if chosen is not None:
            load[chosen.id] += 1
            placed += 1
    return placed


def timed(run, repeat: int) -> float:
    """Median seconds of `repeat` runs."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", default="1000,10000,50000")
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args()
    agents = fleet(args.agents)
    print(f"{'queued':>8} | {'plan() ms':>10} | {'choose per task ms':>18} | {'speed-up':>8}")
    print(f"{'-' * 8}-+-{'-' * 10}-+-{'-' * 18}-+-{'-' * 8}")
    for size in (int(n) for n in args.queued.split(",")):
        queued = queue(size)
        repeat = 5 if size <= 10_000 else 3
        ours = timed(lambda q=queued: plan(q, agents, NOW), repeat)
        peer = timed(lambda q=queued: naive(q, agents), repeat)
        print(f"{size:>8} | {ours * 1e3:>10.1f} | {peer * 1e3:>18.1f} | {peer / ours:>7.1f}x")


if __name__ == "__main__":
    main()
