#!/usr/bin/env python
"""Temporal's side of `bench_workflows.py`: the workflows, the no-op activities and a worker.

    .venv/bin/python benchmarks/wf_temporal_app.py --address 127.0.0.1:PORT --task-queue Q

A module of its own (not inside the benchmark script) because Temporal's workflow sandbox
re-imports the module that defines a workflow, and a `__main__` full of process handling
is not something to re-import. The worker is a separate process, as in any Temporal
deployment: the dev server orchestrates, the worker runs workflow code and activities.
Needs the `bench` dependency group (`temporalio`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow

STEP_TIMEOUT = timedelta(seconds=10)  # start-to-close: how long a lost activity is waited for


@activity.defn
async def noop() -> None:
    """The no-op step: nothing but Temporal's own scheduling, dispatch and completion."""
    return None


@activity.defn
async def mark(path: str, index: int) -> None:
    """The kill scenario's step: one line per run, so that a re-run shows as a duplicate."""
    with open(path, "a") as out:
        out.write(f"{index}\n")


@workflow.defn(name="Chain")
class Chain:
    """`steps` no-op activities one after the other."""

    @workflow.run
    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await workflow.execute_activity(noop, start_to_close_timeout=STEP_TIMEOUT)


@workflow.defn(name="FanOutIn")
class FanOutIn:
    """One no-op, then `width` no-ops in parallel, then one no-op once they all ended."""

    @workflow.run
    async def run(self, width: int) -> None:
        await workflow.execute_activity(noop, start_to_close_timeout=STEP_TIMEOUT)
        await asyncio.gather(
            *(
                workflow.execute_activity(noop, start_to_close_timeout=STEP_TIMEOUT)
                for _ in range(width)
            )
        )
        await workflow.execute_activity(noop, start_to_close_timeout=STEP_TIMEOUT)


@workflow.defn(name="MarkedChain")
class MarkedChain:
    """`steps` activities in a chain, each appending its index to the file at `path`."""

    @workflow.run
    async def run(self, path: str, steps: int) -> None:
        for index in range(steps):
            await workflow.execute_activity(
                mark, args=[path, index], start_to_close_timeout=STEP_TIMEOUT
            )


async def serve(address: str, task_queue: str, max_activities: int) -> None:
    """Run a worker until SIGTERM; connects with retries (the dev server may still start)."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = None
    for _ in range(100):
        try:
            client = await Client.connect(address)
            break
        except Exception:
            await asyncio.sleep(0.2)
    if client is None:
        raise SystemExit(f"no Temporal server at {address}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[Chain, FanOutIn, MarkedChain],
        activities=[noop, mark],
        max_concurrent_activities=max_activities,
    )
    async with worker:
        print("worker ready", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-activities", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue, args.max_activities))


if __name__ == "__main__":
    main()
