"""Two coordinator processes on one PostgreSQL store never give an agent slot twice."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from harness import eventually, wait_for_coordinator
from whoosh_coordinator.store import open_store, read_envelopes
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CompleteTask, RegisterAgent, StartTask, SubmitTask
from whoosh_shared.contract.queries import GetStats
from whoosh_shared.contract.work import WorkItem

TASKS = 40
MAX_CONCURRENT = 2


async def work_through_the_queue(bus, stop: asyncio.Event) -> None:
    """Play the executor through the public contract: take work, start, complete, ack."""
    sub = await bus.js.pull_subscribe(subjects.work_for_type("cli"), durable="test-exec")

    async def run(msg) -> None:
        item = WorkItem.model_validate_json(msg.data)
        await bus.send(StartTask(task_id=item.task_id, attempt=item.attempt, executor_id="t"))
        await asyncio.sleep(random.uniform(0, 0.02))
        await bus.send(CompleteTask(task_id=item.task_id, attempt=item.attempt, exit_code=0))
        await msg.ack()

    while not stop.is_set():
        try:
            msgs = await sub.fetch(8, timeout=0.2)
        except TimeoutError:
            continue
        await asyncio.gather(*(run(m) for m in msgs))
    await sub.unsubscribe()


def max_concurrency_in_history(store_url: str) -> tuple[int, dict[str, int]]:
    """Fold SlotTaken / SlotReleased in store order: the most slots ever held at once."""
    store = open_store(store_url)
    held: set[str] = set()
    peak = 0
    completions: dict[str, int] = defaultdict(int)
    position = 0
    while batch := read_envelopes(store, position):
        for envelope in batch:
            if envelope.type == "AgentSlotTaken":
                assert envelope.data["task_id"] not in held, "one task held two slots"
                held.add(envelope.data["task_id"])
                peak = max(peak, len(held))
            elif envelope.type == "AgentSlotReleased":
                held.discard(envelope.data["task_id"])
            elif envelope.type == "TaskCompleted":
                completions[str(envelope.aggregate_id)] += 1
        position = batch[-1].notification_id
    store.close()
    return peak, completions


async def test_two_coordinators_share_one_store_without_double_booking(
    bus, spawn, nats_url: str, pg_url: str
) -> None:
    for _ in range(2):
        spawn("whoosh_coordinator", "serve", "--nats", nats_url, "--store", pg_url)

    await wait_for_coordinator(bus)
    spec = AgentSpec(name="solo", command=["true"], max_concurrent=MAX_CONCURRENT)
    assert (await bus.send(RegisterAgent(spec=spec))).accepted
    await asyncio.sleep(0.5)  # both coordinators have folded the registration

    stop = asyncio.Event()
    worker = asyncio.create_task(work_through_the_queue(bus, stop))
    replies = await asyncio.gather(
        *(bus.send(SubmitTask(prompt=f"task {i}")) for i in range(TASKS))
    )
    assert all(r.accepted for r in replies), [r.reason for r in replies if not r.accepted]

    async def all_completed() -> bool:
        if worker.done():
            worker.result()  # the worker died: raise its error now rather than time out
        stats = (await bus.ask(GetStats())).result
        return stats["tasks_by_status"]["completed"] == TASKS

    try:
        await eventually(all_completed, timeout=60, what="every task to complete")
    finally:
        stop.set()
        await worker
    peak, completions = max_concurrency_in_history(pg_url)
    assert peak == MAX_CONCURRENT, "slots were used, and never more than max_concurrent"
    assert len(completions) == TASKS and set(completions.values()) == {1}
