#!/usr/bin/env python
"""Cost as work grows: the coordinator's scheduling pass and memory with many tasks.

    .venv/bin/python benchmarks/bench_scaling.py [--queued 1000,10000,100000]
                                                 [--finished 1000,100000] [--store sqlite]

Each scenario runs in a fresh child process (so that one scenario's memory does not
count in the next), with the coordinator's real command handler, projection, working
set and assigner on a real store (SQLite in a temp dir, or a fresh PostgreSQL schema
with `--store postgres`), driven command by command as the service drives them (groups
of 500, as its group commit does), without NATS:

- **queued N**: N tasks pinned to an agent with one slot: one runs, N-1 wait, while
  another agent has a free slot none of them may use (the worst case: every pass reads
  the whole queue; `--no-spare`: no such agent, every slot taken). Then the scheduling
  pass the coordinator makes after every change (`assign_pending`), timed when nothing
  can be placed and when the busy slot frees.
- **finished N**: an agent with 500 slots; N tasks submitted, started and completed.

Memory is the process's resident set (VmRSS, after a garbage collection), next to the
same process before any task (the baseline: interpreter, libraries, store). Printed as a
table and written to benchmarks/results/scaling-<time>.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

GROUP = 500


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def settled_rss_mb() -> float:
    gc.collect()
    return round(rss_mb(), 1)


def scenario(kind: str, n: int, store_url: str, spare: bool = True) -> dict[str, Any]:
    """Runs in the child: build a coordinator core, load it with work, measure."""
    from whoosh_coordinator.assignment import Assigner
    from whoosh_coordinator.commands import CommandHandler
    from whoosh_coordinator.follower import Follower
    from whoosh_coordinator.projections import FleetProjection
    from whoosh_coordinator.store import open_store
    from whoosh_shared.contract import commands as c
    from whoosh_shared.contract.agents import AgentSpec

    store = open_store(store_url)
    projection = FleetProjection()
    follower = Follower(store, projection)
    handler = CommandHandler(store, projection, on_saved=follower.fold_saved)
    assigner = Assigner(handler, timeout_grace_s=5)
    slots = 1 if kind == "queued" else GROUP
    spec = AgentSpec(name="busy", command=["true"], max_concurrent=slots)
    assert handler.handle(c.RegisterAgent(spec=spec)).accepted
    if kind == "queued" and spare:  # a free slot the queue cannot use: passes read it all
        other = AgentSpec(name="other", command=["true"], max_concurrent=1)
        assert handler.handle(c.RegisterAgent(spec=other)).accepted
    baseline = settled_rss_mb()
    began = time.perf_counter()
    ids: list[Any] = []
    for first in range(0, n, GROUP):
        size = min(GROUP, n - first)
        submits = [c.SubmitTask(prompt=f"task {first + i}", agent="busy") for i in range(size)]
        replies = handler.handle_batch(submits)
        batch = [r.ids["task_id"] for r in replies if r.accepted]
        if kind == "finished":
            assigner.assign_pending()
            attempts = {v.id: v.attempt for v in projection.active()}
            handler.handle_batch(
                [c.StartTask(task_id=t, attempt=attempts[t], executor_id="e") for t in attempts]
            )
            handler.handle_batch(
                [c.CompleteTask(task_id=t, attempt=attempts[t], output="ok") for t in attempts]
            )
        ids.extend(batch)
    loaded_s = time.perf_counter() - began
    result: dict[str, Any] = {
        "scenario": f"{kind} {n}" + ("" if spare or kind != "queued" else " (no spare slot)"),
        "kind": kind,
        "tasks": n,
        "load_s": round(loaded_s, 1),
        "commands_per_s": round(n * (3 if kind == "finished" else 1) / loaded_s),
        "baseline_rss_mb": baseline,
        "rss_mb": settled_rss_mb(),
        "task_views_kept": len(projection.tasks),
        "aggregates_kept": len(handler.aggregates._memory),
        "tasks_by_status": {k: v for k, v in projection.stats().tasks_by_status.items() if v},
    }
    result["rss_growth_mb"] = round(result["rss_mb"] - baseline, 1)
    if kind == "queued":
        result.update(pass_times(handler, assigner, projection))
    store.close()
    return result


def pass_times(handler: Any, assigner: Any, projection: Any) -> dict[str, Any]:
    """The scheduling pass with nothing placeable, and with one slot freed."""
    from whoosh_shared.contract import commands as c

    idle = []
    for _ in range(7):
        began = time.perf_counter()
        placed = assigner.assign_pending()
        idle.append(time.perf_counter() - began)
        assert placed == 0
    whole = []  # the peer: the same pass reading the whole queue, as before need classes
    for _ in range(3):
        began = time.perf_counter()
        assert whole_queue_pass(assigner, projection) == 0
        whole.append(time.perf_counter() - began)
    placing = []
    for _ in range(5):
        (running,) = projection.active()
        handler.handle(c.StartTask(task_id=running.id, attempt=running.attempt, executor_id="e"))
        handler.handle(c.CompleteTask(task_id=running.id, attempt=running.attempt, output="ok"))
        began = time.perf_counter()
        placed = assigner.assign_pending()
        placing.append(time.perf_counter() - began)
        assert placed == 1
    return {
        "pass_ms_nothing_placeable": round(statistics.median(idle) * 1000, 2),
        "pass_ms_placing_one": round(statistics.median(placing) * 1000, 2),
        "pass_ms_whole_queue_read": round(statistics.median(whole) * 1000, 2),
    }


def whole_queue_pass(assigner: Any, projection: Any) -> int:
    """What a pass cost before need classes (need_classes.py): the fair order and the
    plan over every queued task, when no free agent can take any of them."""
    from whoosh_coordinator.scheduling.lookahead import SlotForecast
    from whoosh_coordinator.scheduling.scheduler import plan

    agents, now = projection.agents.values(), assigner.handler.clock()
    queued = assigner.fair_share.order(projection.queued(), projection.unfinished_by)
    forecast = SlotForecast.of(agents, projection.tasks, now)
    return len(plan(queued, agents, now, forecast=forecast))


def child(args: argparse.Namespace) -> int:
    if args.store == "postgres":
        from bench_support import make_pg_schema

        store_url, drop = make_pg_schema()
    else:
        folder = tempfile.mkdtemp(prefix="whoosh-scaling-")
        store_url, drop = f"sqlite:///{folder}/events.sqlite", lambda: None
    try:
        print(json.dumps(scenario(args.kind, args.n, store_url, not args.no_spare)))
    finally:
        drop()
    return 0


def run_child(kind: str, n: int, store: str, no_spare: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "child", kind, str(n), "--store", store]
    command += ["--no-spare"] if no_spare else []
    load = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        return {"scenario": f"{kind} {n}", "error": done.stderr.strip()[-500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return result


def table(results: list[dict[str, Any]]) -> None:
    head = (
        "scenario | pass ms (none placeable) | same, whole queue read (before) "
        "| pass ms (placing one) | RSS MB | baseline MB "
        "| growth MB | views kept | load avg"
    )
    print(head)
    print("|".join("---" for _ in head.split("|")))
    for r in results:
        if "error" in r:
            print(f"{r['scenario']} | error: {r['error'][-120:]}")
            continue
        print(
            f"{r['scenario']} | {r.get('pass_ms_nothing_placeable', '-')} | "
            f"{r.get('pass_ms_whole_queue_read', '-')} | "
            f"{r.get('pass_ms_placing_one', '-')} | {r['rss_mb']} | {r['baseline_rss_mb']} | "
            f"{r['rss_growth_mb']} | {r['task_views_kept']} | "
            f"{r['load_1min'][0]:.1f}-{r['load_1min'][1]:.1f}"
        )
    finished = {r["tasks"]: r for r in results if r.get("kind") == "finished" and "error" not in r}
    if len(finished) >= 2:
        low, high = finished[min(finished)], finished[max(finished)]
        print(
            f"memory at {high['tasks']} finished / at {low['tasks']} finished: "
            f"{high['rss_mb'] / low['rss_mb']:.2f}x (issue 11 target: <= 2x)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    one = sub.add_parser("child", help="(internal) one scenario, JSON on stdout")
    one.add_argument("kind", choices=["queued", "finished"])
    one.add_argument("n", type=int)
    one.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    one.add_argument("--no-spare", action="store_true")
    parser.add_argument("--queued", default="1000,10000,100000")
    parser.add_argument("--finished", default="1000,100000")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--no-spare",
        action="store_true",
        help="queued scenarios without the spare agent: every slot is taken (the usual "
        "case with a long queue), so a pass need not read the queue",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.mode == "child":
        return child(args)
    plan = [("queued", int(n)) for n in args.queued.split(",") if n]
    plan += [("finished", int(n)) for n in args.finished.split(",") if n]
    results = []
    for kind, n in plan:
        print(f"[{time.strftime('%H:%M:%S')}] {kind} {n} ...", flush=True)
        results.append(run_child(kind, n, args.store, args.no_spare))
        print(f"  {json.dumps(results[-1])}", flush=True)
    table(results)
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / f"scaling-{datetime.now():%Y%m%d-%H%M%S}.json"
    report = {
        "benchmark": "scaling",
        "store": args.store,
        "cpus": os.cpu_count(),
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"JSON: {out}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
