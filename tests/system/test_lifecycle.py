"""The whole life of tasks across real processes, on both stores: submitted over NATS,
run by a real executor, retried on another agent, every step stored and relayed in order."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from harness import eventually, stream_envelopes, wait_for_coordinator
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent, RetryPolicy, SubmitTask
from whoosh_shared.contract.queries import GetStats, GetTask

FLAKY = AgentSpec(name="flaky", command=["sh", "-c", "exit 3"], capabilities=["echo"])
STEADY = AgentSpec(name="steady", command=["cat"], capabilities=["echo"], max_concurrent=2)


async def test_tasks_complete_with_retries_on_another_agent_and_replay_in_order(
    bus, spawn, nats_url: str, store_url: str
) -> None:
    spawn("whoosh_coordinator", "serve", "--nats", nats_url, "--store", store_url)
    spawn("whoosh_executor_cli", "--nats", nats_url, "--executor-id", "exec-1")

    await wait_for_coordinator(bus)
    for spec in (FLAKY, STEADY):
        assert (await bus.send(RegisterAgent(spec=spec))).accepted
    retry = RetryPolicy(max_attempts=2)
    replies = await asyncio.gather(
        *(
            bus.send(SubmitTask(prompt=f"line {i}", capabilities=["echo"], retry=retry))
            for i in range(6)
        )
    )
    task_ids = [r.ids["task_id"] for r in replies]

    async def all_done() -> bool:
        stats = (await bus.ask(GetStats())).result
        return stats["tasks_by_status"]["completed"] == len(task_ids)

    await eventually(all_done, timeout=60, what="every task to complete")
    views = [(await bus.ask(GetTask(task_id=t))).result for t in task_ids]
    assert sorted(v["output"] for v in views) == [f"line {i}" for i in range(6)]
    assert all(v["agent"] == "steady" for v in views)
    retried = [v for v in views if v["tried_agents"] == ["flaky"]]
    assert retried and all(v["attempt"] == 2 for v in retried)

    await asyncio.sleep(0.3)  # the relay publishes right after each save
    envelopes = await stream_envelopes(bus.js)
    assert [e.notification_id for e in envelopes] == list(range(1, len(envelopes) + 1))
    per_task = defaultdict(list)
    for envelope in envelopes:
        per_task[str(envelope.aggregate_id)].append(envelope.type)
    for task_id in task_ids:
        kinds = per_task[task_id]
        assert kinds[0] == "TaskSubmitted" and kinds[-1] == "TaskCompleted"
        assert kinds.count("TaskAssigned") == kinds.count("TaskAttemptFailed") + 1
