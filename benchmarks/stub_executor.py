"""A minimal CLI executor for `bench_noop.py --executor stub` (a profiling aid, not a product).

It speaks the same contract as executor-cli (WorkItem from the WHOOSH_WORK queue,
StartTask, run the agent's command with the prompt on stdin, CompleteTask / FailTask,
ack once reported) with nothing else: no output streaming, no process-group handling,
no timeouts, no SSH. Comparing a run with it against a run with the real executor tells
how much of the end-to-end time is the executor's own and how much is the core's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import CompleteTask, FailTask, StartTask, Usage
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.bus import Bus, ensure_streams


async def run_work(bus: Bus, executor_id: str, msg) -> None:
    work = WorkItem.model_validate_json(msg.data)
    reply = await bus.send(
        StartTask(task_id=work.task_id, attempt=work.attempt, executor_id=executor_id)
    )
    if not reply.accepted:
        await msg.ack()  # stale or cancelled: nothing to run
        return
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *work.agent.command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        out, _ = await proc.communicate(work.prompt.encode())
    usage = Usage(duration_s=time.monotonic() - began)
    output = out.decode(errors="replace")[-65536:]
    if proc.returncode == 0:
        command = CompleteTask(
            task_id=work.task_id, attempt=work.attempt, output=output, exit_code=0, usage=usage
        )
    else:
        command = FailTask(
            task_id=work.task_id,
            attempt=work.attempt,
            reason=f"exit {proc.returncode}",
            output=output,
            exit_code=proc.returncode,
            usage=usage,
        )
    await bus.send(command)
    await msg.ack()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--executor-id", default="stub")
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    bus = Bus(args.nats, f"stub-executor-{args.executor_id}")
    await bus.connect()
    await ensure_streams(bus.js)
    running: set[asyncio.Task] = set()

    async def on_work(msg) -> None:
        task = asyncio.create_task(run_work(bus, args.executor_id, msg))
        running.add(task)
        task.add_done_callback(running.discard)

    await bus.js.subscribe(
        subjects.work_for_type(WORK_TOKEN[AgentType.CLI]),
        stream=subjects.WORK_STREAM,
        durable="bench-stub-executor",
        cb=on_work,
        manual_ack=True,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=256,
            ack_wait=30,
        ),
    )
    await stop.wait()
    for task in list(running):
        task.cancel()
    await bus.close()


if __name__ == "__main__":
    asyncio.run(main())
