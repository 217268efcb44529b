"""Two real monitor processes, one webhook: an alert the coordinator raises itself (a
thread's `notify` escalation) is POSTed once, not once per monitor. Both monitors bind
one durable JetStream consumer of AlertRaised events, which hands each to one of them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from harness import ServiceProcess, eventually, get_task, wait_for_coordinator
from monitor.webhook_receiver import WebhookReceiver
from system.monitor_stack import NO_CONFIG_FILE
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.runtime.bus import Bus

CONFIG = """
monitoring:
  health_check_interval: 3
  metrics_port: 0
  evaluation_interval_s: 0.2
  default_alert_rules: false
  alert_webhook: {{url: "{url}", timeout_s: 2, retries: 1, backoff_s: 0.1}}
"""
THREADS = 4


async def answer_without_a_vote(bus: Bus, thread_id: UUID) -> None:
    """Act as the executor: the participant's answer has no ANSWER line."""
    view = t.ThreadView.model_validate((await bus.ask(t.GetThread(thread_id=thread_id))).result)
    task_id = view.rounds[0].tasks["voter"]

    async def assigned() -> int:
        return (await get_task(bus, task_id)).attempt

    attempt = await eventually(assigned, timeout=10, what="the task assigned")
    assert (await bus.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x"))).accepted
    done = await bus.send(c.CompleteTask(task_id=task_id, attempt=attempt, output="no idea"))
    assert done.accepted, done.reason


async def test_two_monitors_send_each_coordinator_alert_once(
    bus: Bus, spawn, nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    with WebhookReceiver() as receiver:
        config = tmp_path / "whoosh.yaml"
        config.write_text(CONFIG.format(url=receiver.url))
        spawn(
            "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url,
            env=NO_CONFIG_FILE,
        )  # fmt: skip
        await wait_for_coordinator(bus)
        monitors: list[ServiceProcess] = [
            spawn("whoosh_monitor", "--nats", nats_url, env={"WHOOSH_CONFIG": str(config)})
            for _ in range(2)
        ]
        for monitor in monitors:
            await eventually(lambda m=monitor: "monitor ready" in m.output(), timeout=30,
                             what="both monitors")  # fmt: skip
        spec = AgentSpec(name="voter", command=["cat"], max_concurrent=THREADS)
        assert (await bus.send(c.RegisterAgent(spec=spec))).accepted
        rule = t.EscalationRule(
            name="format-broken", when={"unparseable_over": 0}, do=[t.Action(kind="notify")]
        )
        threads: list[str] = []
        for n in range(THREADS):
            started = await bus.send(
                t.StartThread(topic=f"q{n}", participants=[t.Participant(agent="voter")],
                              escalation=[rule])
            )  # fmt: skip
            assert started.accepted, started.reason
            threads.append(started.ids["thread_id"])
        await asyncio.gather(*(answer_without_a_vote(bus, UUID(i)) for i in threads))

        def noticed() -> list[str]:
            return [r["alert"]["labels"]["thread"] for r in receiver.received
                    if r["alert"]["rule"] == "ThreadEscalated"]  # fmt: skip

        await eventually(lambda: len(noticed()) >= THREADS, timeout=30, what="the notices")
        await asyncio.sleep(3.0)  # time for a duplicate from the other monitor to arrive
        assert sorted(noticed()) == sorted(threads), "each alert once, however many monitors"
        assert all(m.proc is not None and m.proc.poll() is None for m in monitors)
