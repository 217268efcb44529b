#!/usr/bin/env python
"""DBOS's side of `bench_workflows.py`: the workflows, the no-op steps and the app process.

    .venv/bin/python benchmarks/wf_dbos_app.py measure --db URL [--chain-steps 20 ...]
    .venv/bin/python benchmarks/wf_dbos_app.py marked --db URL --marker FILE --workflow-id ID
                                                      [--resume]

DBOS is a library: the application process is the orchestrator, its workflows checkpoint
every step in the system database (SQLite or PostgreSQL) and a restarted process
recovers the workflows left pending. So the measurements run inside a DBOS app process of
their own (this one), which prints its figures as one JSON line; `marked` is the kill
scenario's app, which `bench_workflows.py` kills -9 and starts again with `--resume`.
A module of its own because DBOS is a process-wide singleton and names its application
version after the workflows' source. Needs the `bench` dependency group (`dbos`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import time
from typing import Any

from dbos import DBOS, SetWorkflowID


@DBOS.step()
async def noop() -> None:
    """The no-op step: nothing but DBOS's checkpoint of its (empty) output."""
    return None


@DBOS.step()
async def mark(path: str, index: int) -> None:
    """The kill scenario's step: one line per run, so that a re-run shows as a duplicate."""
    with open(path, "a") as out:
        out.write(f"{index}\n")


@DBOS.workflow()
async def chain(steps: int) -> list[float]:
    """`steps` no-op steps one after the other; when each returned (perf_counter, s)."""
    ends: list[float] = []
    for _ in range(steps):
        await noop()
        ends.append(time.perf_counter())
    return ends


@DBOS.workflow()
async def fan_out_in(width: int) -> None:
    """One no-op, then `width` no-ops concurrently, then one no-op."""
    await noop()
    await asyncio.gather(*(noop() for _ in range(width)))
    await noop()


@DBOS.workflow()
async def marked_chain(path: str, steps: int) -> None:
    """`steps` steps in a chain, each appending its index to the file at `path`."""
    for index in range(steps):
        await mark(path, index)


def launch(db: str) -> None:
    DBOS(
        config={
            "name": "whoosh-bench",
            "system_database_url": db,
            "run_admin_server": False,  # no listening port: nothing here needs it
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    logging.getLogger("dbos").setLevel(logging.WARNING)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, chains (per-step intervals), fan-outs, then concurrent short executions."""
    await chain(3)
    intervals: list[float] = []
    chain_walls: list[float] = []
    for _ in range(args.chains):
        started = time.perf_counter()
        ends = await chain(args.chain_steps)
        chain_walls.append(time.perf_counter() - started)
        intervals += [b - a for a, b in itertools.pairwise(ends)]
    fan_walls: list[float] = []
    for _ in range(args.fanouts):
        started = time.perf_counter()
        await fan_out_in(args.fan_width)
        fan_walls.append(time.perf_counter() - started)
    started = time.perf_counter()
    handles = await asyncio.gather(
        *(DBOS.start_workflow_async(chain, args.exec_steps) for _ in range(args.executions))
    )
    await asyncio.gather(*(h.get_result() for h in handles))
    many_wall = time.perf_counter() - started
    return {
        "step_intervals_s": intervals,
        "chain_walls_s": chain_walls,
        "fan_walls_s": fan_walls,
        "many_wall_s": many_wall,
    }


async def marked(args: argparse.Namespace) -> None:
    """Start (or, with --resume, wait for the recovered) marked chain; exit when it ends."""
    if args.resume:  # DBOS.launch() has already recovered the pending workflow
        handle = await DBOS.retrieve_workflow_async(args.workflow_id)
    else:
        with SetWorkflowID(args.workflow_id):
            handle = await DBOS.start_workflow_async(marked_chain, args.marker, args.steps)
    await handle.get_result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--db", required=True)
    m.add_argument("--chain-steps", type=int, default=20)
    m.add_argument("--chains", type=int, default=10)
    m.add_argument("--fan-width", type=int, default=100)
    m.add_argument("--fanouts", type=int, default=3)
    m.add_argument("--executions", type=int, default=200)
    m.add_argument("--exec-steps", type=int, default=5)
    k = sub.add_parser("marked")
    k.add_argument("--db", required=True)
    k.add_argument("--marker", required=True)
    k.add_argument("--workflow-id", required=True)
    k.add_argument("--steps", type=int, default=20)
    k.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    async def run() -> None:
        launch(args.db)  # inside the loop: async workflows recovered at launch need one
        try:
            if args.mode == "measure":
                print("RESULT " + json.dumps(await measure(args)), flush=True)
            else:
                await marked(args)
                print("marked chain done", flush=True)
        finally:
            DBOS.destroy(destroy_registry=False)

    asyncio.run(run())


if __name__ == "__main__":
    main()
