#!/usr/bin/env python
"""No-op task latency and throughput: WHOOSH (SQLite and PostgreSQL stores) against Celery + Redis.

    .venv/bin/python benchmarks/bench_noop.py [--tasks N] [--concurrency C]
                                              [--stores sqlite,postgres] [--skip-celery]

For each store it starts, on loopback, a fresh nats-server (JetStream), one coordinator
and one executor-cli, registers a CLI agent running `true`, and measures how long a
client waits from sending `SubmitTask` to seeing the task's `TaskCompleted` event on the
bus: sequentially (p50/p99) and with C tasks in flight (tasks/s). Then the same for a
Celery no-op task with one worker process on Redis. It finishes with a per-step profile
of a few sequential WHOOSH tasks and the CPU each process spent per task. The table is
printed and written as JSON to benchmarks/results/. See benchmarks/README.md.

Not part of the test suite. Every process it starts is stopped at the end, on errors and
on Ctrl-C / SIGTERM; the PostgreSQL schema and the Redis database it used are emptied.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # the test harness: nats-server binary, free ports
sys.path.insert(0, str(HERE))

from bench_support import (  # noqa: E402
    BenchError,
    CpuMeter,
    Proc,
    Progress,
    TaskEnds,
    cpu_seconds,
    drop_run_data,
    install_signal_handlers,
    load_before_run,
    log,
    machine,
    make_pg_schema,
    plain_args,
    print_markdown,
    python_argv,
    run_cleanups,
    run_concurrent,
    start_nats,
    summarize,
    wait_for_coordinator,
    watched,
    whoosh_env,
    write_report,
)
from whoosh_shared import subjects  # noqa: E402
from whoosh_shared.agents import AgentSpec  # noqa: E402
from whoosh_shared.bus import Bus  # noqa: E402
from whoosh_shared.commands import RegisterAgent, RejectCode, RetryPolicy, SubmitTask  # noqa: E402

REDIS_URL = os.environ.get("WHOOSH_BENCH_REDIS", "redis://127.0.0.1:6379/9")
AGENT = "bench-noop"


class WhooshClient:
    """Submits no-op tasks and learns completion from the relayed TaskCompleted events."""

    def __init__(self, bus: Bus, task_timeout: float) -> None:
        self.bus = bus
        self.task_timeout = task_timeout
        self.ends = TaskEnds(bus)

    async def start(self) -> None:
        # Subscribed before anything is submitted; the failure types only so that a failed
        # task ends the benchmark with its reason instead of a timeout.
        await self.ends.subscribe()
        await self.bus.nc.flush()

    async def run_one(self, timeout: float | None = None) -> dict[str, Any]:
        """One task, submit to completion; returns its latency and wall-clock marks."""
        command = SubmitTask(
            prompt="noop",
            agent=AGENT,
            timeout_s=60,
            retry=RetryPolicy(max_attempts=1),
            actor="bench",
        )
        run = await self.ends.run(command, timeout or self.task_timeout)
        if run.envelope["type"] != "TaskCompleted":
            data = run.envelope.get("data", {})
            raise BenchError(
                f"task {run.task_id} ended with {run.envelope['type']}: {data.get('reason')!r} "
                f"(output {data.get('output', '')[-300:]!r})"
            )
        return {
            "task_id": run.task_id,
            "latency_s": run.done - run.sent,
            "sent_wall": run.sent_wall,
            "replied_wall": run.replied_wall,
            "done_wall": run.done_wall,
        }


async def register_agent(bus: Bus, max_concurrent: int) -> None:
    spec = AgentSpec(name=AGENT, command=["true"], max_concurrent=max_concurrent)
    reply = await bus.send(RegisterAgent(spec=spec, actor="bench"))
    if not reply.accepted and reply.code != RejectCode.DUPLICATE.value:
        raise BenchError(f"RegisterAgent rejected: {reply.code}: {reply.reason}")


async def run_sequential(
    label: str, n: int, one: Callable[[], Any], deadline_s: float
) -> list[dict[str, Any]]:
    progress = Progress(label, n)
    results = []
    deadline = time.monotonic() + deadline_s
    for _ in range(n):
        results.append(await one())
        progress.step()
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: over the phase limit of {deadline_s:g}s")
    return results


class Spy:
    """Watches one task's path on the wire (profile phase only): commands, replies, work
    items and events, keyed by task id, with the wall-clock time each was seen."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.marks: dict[str, dict[str, float]] = defaultdict(dict)
        self.inbox: dict[str, tuple[str, str]] = {}
        self.subs: list[Any] = []

    async def start(self) -> None:
        nc = self.bus.nc
        self.subs = [
            await nc.subscribe(f"{subjects.EVENT_PREFIX}.task.>", cb=self._on_event),
            await nc.subscribe(subjects.WORK_WILDCARD, cb=self._on_work),
            await nc.subscribe(f"{subjects.COMMAND_PREFIX}.task.>", cb=self._on_command),
            await nc.subscribe("_INBOX.>", cb=self._on_reply),
        ]
        await nc.flush()

    async def stop(self) -> None:
        for sub in self.subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _on_event(self, msg: Any) -> None:
        seen = time.time()
        envelope = json.loads(msg.data)
        marks = self.marks[envelope["aggregate_id"]]
        marks[f"event:{envelope['type']}"] = datetime.fromisoformat(
            envelope["timestamp"]
        ).timestamp()
        marks[f"seen:{envelope['type']}"] = seen

    async def _on_work(self, msg: Any) -> None:
        seen = time.time()
        self.marks[json.loads(msg.data)["task_id"]].setdefault("work_published", seen)

    async def _on_command(self, msg: Any) -> None:
        seen = time.time()
        name = msg.subject.rsplit(".", 1)[-1]
        task_id = json.loads(msg.data).get("task_id")
        if task_id is None:
            return  # SubmitTask: the client times it itself
        self.marks[task_id].setdefault(f"cmd:{name}", seen)
        if msg.reply:
            self.inbox[msg.reply] = (task_id, name)

    async def _on_reply(self, msg: Any) -> None:
        seen = time.time()
        owner = self.inbox.pop(msg.subject, None)
        if owner is not None:
            self.marks[owner[0]].setdefault(f"reply:{owner[1]}", seen)


# Each step from one mark to the next; they chain from submit to the client seeing the
# completion, so the steps of the main path add up to the end-to-end latency.
PROFILE_STEPS: list[tuple[str, str, str, str]] = [
    (
        "submit",
        "client sent",
        "event:TaskSubmitted",
        "SubmitTask over NATS to the coordinator, decoded, Task created",
    ),
    (
        "schedule",
        "event:TaskSubmitted",
        "event:TaskAssigned",
        "TaskSubmitted saved + reply, scheduler pass (kick), Task+Agent assigned",
    ),
    (
        "dispatch",
        "event:TaskAssigned",
        "work_published",
        "assignment saved, relay reads the log and publishes the WorkItem (JetStream)",
    ),
    ("pickup", "work_published", "cmd:start", "executor receives the WorkItem and sends StartTask"),
    ("start", "cmd:start", "event:TaskStarted", "coordinator decodes StartTask"),
    (
        "run",
        "event:TaskStarted",
        "cmd:complete",
        "TaskStarted saved + reply; executor runs `true`; sends CompleteTask",
    ),
    ("complete", "cmd:complete", "event:TaskCompleted", "coordinator decodes CompleteTask"),
    (
        "notify",
        "event:TaskCompleted",
        "client saw completion",
        "TaskCompleted + slot release saved, relay reads and publishes, client receives",
    ),
]
# Side measurements, not on the chain above.
PROFILE_EXTRAS: list[tuple[str, str, str, str]] = [
    ("submit reply", "client sent", "client replied", "SubmitTask round trip (client view)"),
    (
        "StartTask round trip",
        "cmd:start",
        "reply:start",
        "coordinator handles StartTask (incl. save)",
    ),
    (
        "CompleteTask round trip",
        "cmd:complete",
        "reply:complete",
        "coordinator handles CompleteTask (incl. save)",
    ),
    (
        "relay lag TaskSubmitted",
        "event:TaskSubmitted",
        "seen:TaskSubmitted",
        "event timestamp -> on the bus",
    ),
    (
        "relay lag TaskStarted",
        "event:TaskStarted",
        "seen:TaskStarted",
        "event timestamp -> on the bus",
    ),
    ("exec: work -> StartTask reply", "work_published", "reply:start", ""),
    (
        "exec: StartTask reply -> CompleteTask",
        "reply:start",
        "cmd:complete",
        "executor: spawn `true`, wait, report",
    ),
]


def profile_table(marks_by_task: list[dict[str, float]]) -> dict[str, Any]:
    def steps(defs: list[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
        out = []
        for name, start, end, what in defs:
            values = [(m[end] - m[start]) * 1000 for m in marks_by_task if start in m and end in m]
            out.append(
                {
                    "step": name,
                    "from": start,
                    "to": end,
                    "what": what,
                    "n": len(values),
                    "p50_ms": round(statistics.median(values), 3) if values else None,
                    "mean_ms": round(statistics.fmean(values), 3) if values else None,
                }
            )
        return out

    totals = [
        (m["client saw completion"] - m["client sent"]) * 1000
        for m in marks_by_task
        if "client saw completion" in m
    ]
    return {
        "tasks": len(marks_by_task),
        "end_to_end_p50_ms": round(statistics.median(totals), 3) if totals else None,
        "steps": steps(PROFILE_STEPS),
        "extras": steps(PROFILE_EXTRAS),
    }


async def whoosh_phases(
    label: str, nats_url: str, args: argparse.Namespace, cpu: CpuMeter
) -> dict[str, Any]:
    bus = Bus(nats_url, "whoosh-bench-client")
    await bus.connect()
    try:
        log(f"[{label}] waiting for the coordinator")
        await wait_for_coordinator(bus)
        await register_agent(bus, max(64, args.concurrency))
        client = WhooshClient(bus, args.task_timeout)
        await client.start()

        log(
            f"[{label}] warm-up: {args.warmup} sequential + {2 * args.concurrency} concurrent "
            "(the first task also waits for the executor)"
        )
        await client.run_one(timeout=90)
        await run_sequential(f"[{label}] warm-up", args.warmup, client.run_one, args.phase_limit)
        await run_concurrent(
            f"[{label}] warm-up",
            2 * args.concurrency,
            args.concurrency,
            client.run_one,
            args.phase_limit,
        )

        log(f"[{label}] sequential: {args.tasks} tasks, one at a time")
        seq = await run_sequential(
            f"[{label}] sequential", args.tasks, client.run_one, args.phase_limit
        )
        sequential = summarize([r["latency_s"] for r in seq])
        log(
            f"[{label}] sequential p50 {sequential['p50_ms']:.2f} ms, "
            f"p99 {sequential['p99_ms']:.2f} ms"
        )

        log(f"[{label}] throughput: {args.tasks} tasks, {args.concurrency} in flight")
        cpu.start()
        conc, elapsed = await run_concurrent(
            f"[{label}] throughput",
            args.tasks,
            args.concurrency,
            client.run_one,
            args.phase_limit,
        )
        cpu_ms = cpu.per_task_ms(args.tasks)
        throughput = {
            "concurrency": args.concurrency,
            "elapsed_s": round(elapsed, 3),
            "tasks_per_s": round(args.tasks / elapsed, 2),
            "latency": summarize([r["latency_s"] for r in conc]),
        }
        log(f"[{label}] throughput {throughput['tasks_per_s']:.1f} tasks/s")

        log(f"[{label}] profile: {args.profile_tasks} sequential tasks with every step watched")
        spy = Spy(bus)
        await spy.start()
        marks = []
        for _ in range(args.profile_tasks):
            r = await client.run_one()
            for _ in range(100):  # the spy's own copy of the completion may trail the client's
                if "seen:TaskCompleted" in spy.marks.get(r["task_id"], {}):
                    break
                await asyncio.sleep(0.002)
            m = dict(spy.marks.pop(r["task_id"], {}))
            m.update(
                {
                    "client sent": r["sent_wall"],
                    "client replied": r["replied_wall"],
                    "client saw completion": r["done_wall"],
                }
            )
            marks.append(m)
        await spy.stop()
        return {
            "sequential": sequential,
            "throughput": throughput,
            "cpu_ms_per_task": cpu_ms,
            "profile": profile_table(marks),
        }
    finally:
        with contextlib.suppress(Exception):
            await bus.close()


def bench_whoosh(store: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    label = f"whoosh/{store}"
    cleanups: list[Callable[[], None]] = []
    started: list[Proc] = []
    try:
        nats, nats_url = start_nats(workdir, name=f"nats-server-{store}", data=f"nats-{store}")
        started.append(nats)

        if store == "sqlite":
            store_url = f"sqlite:///{workdir / f'events-{store}.sqlite'}"
        elif store == "postgres":
            store_url, drop = make_pg_schema()
            cleanups.append(drop)
        else:
            raise BenchError(f"unknown store {store!r} (sqlite or postgres)")

        config = workdir / f"whoosh-{store}.yaml"
        env = whoosh_env(config, workdir / f"data-{store}", max(64, args.concurrency))
        log(f"[{label}] nats {nats_url}, store {store_url}")
        coordinator = Proc(
            f"coordinator-{store}",
            [
                *python_argv(args.cprofile, f"coordinator-{store}"),
                "-m",
                "whoosh_coordinator",
                "serve",
                "--nats",
                nats_url,
                "--store",
                store_url,
            ],
            workdir,
            env,
        ).start()
        executor = Proc(
            f"executor-{args.executor}-{store}",
            [
                *python_argv(args.cprofile, f"executor-{store}"),
                *executor_argv(args.executor, nats_url, f"bench-{store}"),
            ],
            workdir,
            env,
        ).start()
        started += [coordinator, executor]
        cpu = CpuMeter(
            {
                "coordinator": lambda: cpu_seconds(coordinator.pid),
                "executor (incl. children)": lambda: cpu_seconds(executor.pid, children=True),
                "nats-server": lambda: cpu_seconds(nats.pid),
                "bench client": lambda: cpu_seconds(os.getpid()),
            }
        )
        result = asyncio.run(
            watched(whoosh_phases(label, nats_url, args, cpu), [nats, coordinator, executor])
        )
        return {"system": f"WHOOSH ({store})", "store": store, **result}
    finally:
        for proc in reversed(started):
            proc.stop()
        drop_run_data(workdir, f"-{store}")  # keep the service logs
        run_cleanups(cleanups)


def executor_argv(kind: str, nats_url: str, executor_id: str) -> list[str]:
    if kind == "cli":
        return ["-m", "whoosh_executor_cli", "--nats", nats_url, "--executor-id", executor_id]
    return [str(HERE / "stub_executor.py"), "--nats", nats_url, "--executor-id", executor_id]


# -- Celery -------------------------------------------------------------------------------


def bench_celery(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import redis

    label = "celery"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {REDIS_URL} unavailable: {exc}") from None
    client.flushdb()
    os.environ["BENCH_CELERY_REDIS_URL"] = REDIS_URL
    from celery_noop_app import app, noop

    worker = Proc(
        "celery-worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_noop_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-noop-{os.getpid()}@%h",
        ],
        workdir,
        {
            "BENCH_CELERY_REDIS_URL": REDIS_URL,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        },
        cwd=HERE,
    ).start()

    def check_worker() -> None:
        if not worker.alive():
            raise BenchError(f"celery worker exited; last lines:\n{worker.tail()}")

    def one(timeout: float | None = None) -> float:
        started = time.perf_counter()
        noop.apply_async().get(timeout=timeout or args.task_timeout)
        return time.perf_counter() - started

    def redis_cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    try:
        log(
            f"[{label}] warm-up: {args.warmup} sequential + {2 * args.concurrency} concurrent "
            "(the first task also waits for the worker)"
        )
        one(timeout=90)
        for _ in range(args.warmup):
            one()
        check_worker()
        windowed(2 * args.concurrency, args.concurrency, noop, args.task_timeout)

        log(f"[{label}] sequential: {args.tasks} tasks, one at a time")
        progress = Progress(f"[{label}] sequential", args.tasks)
        latencies = []
        deadline = time.monotonic() + args.phase_limit
        for _ in range(args.tasks):
            latencies.append(one())
            progress.step()
            if time.monotonic() > deadline:
                raise BenchError(f"{label}: over the phase limit of {args.phase_limit:g}s")
        check_worker()
        sequential = summarize(latencies)
        log(
            f"[{label}] sequential p50 {sequential['p50_ms']:.2f} ms, "
            f"p99 {sequential['p99_ms']:.2f} ms"
        )

        log(f"[{label}] throughput: {args.tasks} tasks, {args.concurrency} in flight")
        cpu = CpuMeter(
            {
                "celery worker": lambda: cpu_seconds(worker.pid, children=True),
                "redis-server (whole server)": redis_cpu,
                "bench client": lambda: cpu_seconds(os.getpid()),
            }
        )
        cpu.start()
        conc_latencies, elapsed = windowed(
            args.tasks, args.concurrency, noop, args.task_timeout, args.phase_limit, label
        )
        cpu_ms = cpu.per_task_ms(args.tasks)
        check_worker()
        throughput = {
            "concurrency": args.concurrency,
            "elapsed_s": round(elapsed, 3),
            "tasks_per_s": round(args.tasks / elapsed, 2),
            "latency": summarize(conc_latencies),
        }
        log(f"[{label}] throughput {throughput['tasks_per_s']:.1f} tasks/s")
        return {
            "system": "Celery 5 + Redis",
            "sequential": sequential,
            "throughput": throughput,
            "cpu_ms_per_task": cpu_ms,
            "config": "pool=solo, 1 worker process, redis broker+backend, defaults "
            "(acks early, results not fsynced)",
        }
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            app.close()
        with contextlib.suppress(Exception):
            client.flushdb()


def windowed(
    n: int,
    concurrency: int,
    task: Any,
    task_timeout: float,
    phase_limit: float = 600,
    label: str = "celery",
) -> tuple[list[float], float]:
    """n Celery tasks with `concurrency` in flight: a sliding window over AsyncResults.

    One worker runs them in order, so waiting on the oldest and topping up keeps the
    window full without client threads."""
    progress = Progress(f"[{label}] throughput", n)
    pending: deque[tuple[float, Any]] = deque()
    latencies = []
    sent = 0
    started = time.perf_counter()
    deadline = time.monotonic() + phase_limit
    while sent < n or pending:
        while sent < n and len(pending) < concurrency:
            pending.append((time.perf_counter(), task.apply_async()))
            sent += 1
        t_sent, result = pending.popleft()
        result.get(timeout=task_timeout)
        latencies.append(time.perf_counter() - t_sent)
        progress.step()
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: over the phase limit of {phase_limit:g}s")
    return latencies, time.perf_counter() - started


# -- report -------------------------------------------------------------------------------


def ratios(results: list[dict[str, Any]]) -> None:
    celery = next(
        (r for r in results if r["system"].startswith("Celery") and "error" not in r), None
    )
    for r in results:
        if "error" in r or celery is None:
            continue
        r["vs_celery"] = {
            "p50_ratio": round(r["sequential"]["p50_ms"] / celery["sequential"]["p50_ms"], 3),
            "throughput_ratio": round(
                r["throughput"]["tasks_per_s"] / celery["throughput"]["tasks_per_s"], 3
            ),
        }
        if not r["system"].startswith("Celery"):
            r["meets_aim"] = (
                r["vs_celery"]["p50_ratio"] <= 1.5 and r["vs_celery"]["throughput_ratio"] >= 1.0
            )


def print_table(results: list[dict[str, Any]], concurrency: int) -> None:
    head = (
        "system",
        "p50 ms",
        "p99 ms",
        f"tasks/s (C={concurrency})",
        "p50 vs Celery",
        "tasks/s vs Celery",
    )
    rows = []
    for r in results:
        if "error" in r:
            rows.append((r["system"], "-", "-", "-", "-", f"error: {r['error'][:60]}"))
            continue
        vs = r.get("vs_celery")
        rows.append(
            (
                r["system"],
                f"{r['sequential']['p50_ms']:.2f}",
                f"{r['sequential']['p99_ms']:.2f}",
                f"{r['throughput']['tasks_per_s']:.1f}",
                f"{vs['p50_ratio']:.2f}x" if vs else "-",
                f"{vs['throughput_ratio']:.2f}x" if vs else "-",
            )
        )
    print()
    print_markdown([head, *rows])
    print("aim: WHOOSH p50 <= 1.5x Celery's and tasks/s >= Celery's, every WHOOSH step durable")


def print_profiles(results: list[dict[str, Any]]) -> None:
    for r in results:
        if "error" in r:
            continue
        print(f"\nCPU per task during the throughput phase, {r['system']} (ms):")
        for name, value in r["cpu_ms_per_task"].items():
            print(f"  {name:<30} {value:8.3f}")
        prof = r.get("profile")
        if not prof:
            continue
        print(
            f"\nWhere the time goes, {r['system']}: median over {prof['tasks']} sequential "
            f"tasks, end to end {prof['end_to_end_p50_ms']} ms"
        )
        for step in prof["steps"]:
            value = "-" if step["p50_ms"] is None else f"{step['p50_ms']:7.2f}"
            print(f"  {step['step']:<10} {value} ms  {step['what']}")
        print("  side measurements:")
        for step in prof["extras"]:
            value = "-" if step["p50_ms"] is None else f"{step['p50_ms']:7.2f}"
            print(f"    {step['step']:<38} {value} ms  {step['what']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks",
        type=int,
        default=1000,
        help="tasks per measured phase (sequential, throughput); default 1000",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="tasks in flight in the throughput phase; default 32",
    )
    parser.add_argument(
        "--stores",
        default="sqlite,postgres",
        help="WHOOSH stores to measure, comma-separated (sqlite, postgres)",
    )
    parser.add_argument("--skip-celery", action="store_true", help="do not measure Celery")
    parser.add_argument("--warmup", type=int, default=50, help="sequential warm-up tasks")
    parser.add_argument(
        "--profile-tasks",
        type=int,
        default=30,
        help="sequential WHOOSH tasks traced step by step; default 30",
    )
    parser.add_argument(
        "--task-timeout",
        type=float,
        default=30.0,
        help="seconds one task may take before the run is aborted",
    )
    parser.add_argument(
        "--phase-limit",
        type=float,
        default=300.0,
        help="seconds one phase may take before the run is aborted",
    )
    parser.add_argument(
        "--executor",
        choices=["cli", "stub"],
        default="cli",
        help="cli: the real executor-cli (default); stub: benchmarks/"
        "stub_executor.py, a minimal executor, to tell executor cost "
        "from core cost",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="DIR",
        help="run the coordinator and executor under cProfile and write "
        "their .prof files to DIR (slows them: timings are not "
        "comparable then)",
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="folder for the JSON result"
    )
    args = parser.parse_args(argv)
    if args.tasks < 2 or args.concurrency < 1:
        parser.error("--tasks must be >= 2 and --concurrency >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    results: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-"))
    log(
        f"no-op benchmark: {args.tasks} tasks per phase, concurrency {args.concurrency}, "
        f"stores {','.join(stores) or '-'}, celery {'no' if args.skip_celery else 'yes'}, "
        f"{os.cpu_count()} CPUs; logs in {workdir}"
    )
    load_before = load_before_run()
    exit_code = 0
    try:
        for store in stores:
            try:
                results.append(bench_whoosh(store, args, workdir))
            except BenchError as exc:
                log(f"[whoosh/{store}] FAILED: {exc}")
                results.append({"system": f"WHOOSH ({store})", "store": store, "error": str(exc)})
                exit_code = 1
        if not args.skip_celery:
            try:
                results.insert(0, bench_celery(args, workdir))
            except BenchError as exc:
                log(f"[celery] FAILED: {exc}")
                results.insert(0, {"system": "Celery 5 + Redis", "error": str(exc)})
                exit_code = 1
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        Proc.stop_all()
        return 130
    finally:
        Proc.stop_all()

    ratios(results)
    print_table(results, args.concurrency)
    print_profiles(results)
    report = {
        "benchmark": "noop",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "args": plain_args(args),
        "machine": machine(load_before),
        "results": results,
        "logs": str(workdir),
    }
    out = write_report(args.output, "noop", report)
    print(f"\nJSON: {out}\nservice logs: {workdir}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
