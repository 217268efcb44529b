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
    cprofile_summary,
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
from whoosh_shared.contract import subjects  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec  # noqa: E402
from whoosh_shared.contract.commands import RegisterAgent, RejectCode, RetryPolicy, SubmitTask  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

REDIS_URL = os.environ.get("WHOOSH_BENCH_REDIS", "redis://127.0.0.1:6379/9")
AGENT = "bench-noop"
BENCH_COMMAND = ("true",)  # the agent's command: what every WHOOSH task of this benchmark runs
PROMPT = "noop"
CELERY_SYSTEMS = {
    "noop": "Celery 5 + Redis",
    "command": "Celery 5 + Redis, task runs `true`",
}
CELERY_DURABILITY = "none: acks before running, Redis not fsynced"
DURABILITY = {
    ("sqlite", "normal"): "every step committed; WAL synchronous=NORMAL: survives kill -9 of "
    "any process, an OS crash may lose the commits since the last checkpoint (~0.2 s)",
    ("sqlite", "full"): "every step committed and fsynced (synchronous=FULL)",
    ("postgres", "normal"): "every step committed; synchronous_commit=off: survives kill -9 of "
    "any WHOOSH process, a PostgreSQL or OS crash may lose the last <= 600 ms",
    ("postgres", "full"): "every step committed and flushed (synchronous_commit=on)",
}


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
            prompt=PROMPT,
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
    spec = AgentSpec(name=AGENT, command=list(BENCH_COMMAND), max_concurrent=max_concurrent)
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

    async def watch(self, run_one: Callable[[], Any]) -> dict[str, float]:
        """One task run by the client, with the marks the spy saw on the wire for it."""
        r = await run_one()
        for _ in range(100):  # the spy's own copy of the completion may trail the client's
            if "seen:TaskCompleted" in self.marks.get(r["task_id"], {}):
                break
            await asyncio.sleep(0.002)
        marks = dict(self.marks.pop(r["task_id"], {}))
        marks.update(
            {
                "client sent": r["sent_wall"],
                "client replied": r["replied_wall"],
                "client saw completion": r["done_wall"],
            }
        )
        return marks

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
LOADED_PROFILE_FACTOR = 10  # the profile under load watches this many times --profile-tasks
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
    label: str, nats_url: str, args: argparse.Namespace, cpu: CpuMeter, profile: bool
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

        n = args.tasks_per_round
        log(f"[{label}] sequential: {n} tasks, one at a time")
        seq = await run_sequential(f"[{label}] sequential", n, client.run_one, args.phase_limit)
        sequential = summarize([r["latency_s"] for r in seq])
        log(
            f"[{label}] sequential p50 {sequential['p50_ms']:.2f} ms, "
            f"p99 {sequential['p99_ms']:.2f} ms"
        )

        log(f"[{label}] throughput: {n} tasks, {args.concurrency} in flight")
        cpu.start()
        conc, elapsed = await run_concurrent(
            f"[{label}] throughput", n, args.concurrency, client.run_one, args.phase_limit
        )
        cpu_ms = cpu.per_task_ms(n)
        throughput = {
            "concurrency": args.concurrency,
            "elapsed_s": round(elapsed, 3),
            "tasks_per_s": round(n / elapsed, 2),
            "latency": summarize([r["latency_s"] for r in conc]),
        }
        log(f"[{label}] throughput {throughput['tasks_per_s']:.1f} tasks/s")
        raw = {
            "seq_s": [r["latency_s"] for r in seq],
            "conc_s": [r["latency_s"] for r in conc],
            "elapsed_s": elapsed,
            "tasks": n,
        }
        if not profile:
            return {
                "sequential": sequential,
                "throughput": throughput,
                "cpu_ms_per_task": cpu_ms,
                "_raw": raw,
            }

        log(f"[{label}] profile: {args.profile_tasks} sequential tasks with every step watched")
        spy = Spy(bus)
        await spy.start()
        try:
            marks = [await spy.watch(client.run_one) for _ in range(args.profile_tasks)]
            loaded_n = LOADED_PROFILE_FACTOR * args.profile_tasks
            log(
                f"[{label}] profile under load: {loaded_n} tasks, {args.concurrency} in flight, "
                "every step watched"
            )
            loaded, _ = await run_concurrent(
                f"[{label}] profile under load",
                loaded_n,
                args.concurrency,
                lambda: spy.watch(client.run_one),
                args.phase_limit,
            )
        finally:
            await spy.stop()
        return {
            "sequential": sequential,
            "throughput": throughput,
            "cpu_ms_per_task": cpu_ms,
            "profile": profile_table(marks),
            "profile_loaded": profile_table(loaded),
            "_raw": raw,
        }
    finally:
        with contextlib.suppress(Exception):
            await bus.close()


def bench_whoosh(
    system: dict[str, str], args: argparse.Namespace, workdir: Path, round_no: int, profile: bool
) -> dict[str, Any]:
    """One round of one WHOOSH system: fresh services, measure, stop them."""
    store, sync, loop = system["store"], system["sync"], system.get("loop", "uvloop")
    tag = f"{store}-{sync}-{loop}-r{round_no}"
    label = f"whoosh/{store}/{sync}/{loop} round {round_no}"
    cleanups: list[Callable[[], None]] = []
    started: list[Proc] = []
    try:
        nats, nats_url = start_nats(workdir, name=f"nats-server-{tag}", data=f"nats-{tag}")
        started.append(nats)

        if store == "sqlite":
            store_url = f"sqlite:///{workdir / f'events-{tag}.sqlite'}"
        elif store == "postgres":
            store_url, drop = make_pg_schema()
            cleanups.append(drop)
        else:
            raise BenchError(f"unknown store {store!r} (sqlite or postgres)")

        config = workdir / f"whoosh-{tag}.yaml"
        env = whoosh_env(config, workdir / f"data-{tag}", max(64, args.concurrency), sync)
        env["WHOOSH_EVENT_LOOP"] = system.get("loop", "uvloop")
        if system.get("src"):  # another build of the services (a baseline checkout)
            env["PYTHONPATH"] = system["src"]
        log(f"[{label}] nats {nats_url}, store {store_url}")
        coordinators = [
            Proc(
                f"coordinator-{tag}-{i}",
                [
                    *python_argv(args.cprofile, f"coordinator-{tag}-{i}"),
                    "-m",
                    "whoosh_coordinator",
                    "serve",
                    "--nats",
                    nats_url,
                    "--store",
                    store_url,
                    *(["--no-relay"] if i else []),  # one relay is enough; others dispatch
                ],
                workdir,
                env,
            ).start()
            for i in range(args.coordinators)
        ]
        executors = [
            Proc(
                f"executor-{args.executor}-{tag}-{i}",
                [
                    *python_argv(args.cprofile, f"executor-{tag}-{i}"),
                    *executor_argv(args.executor, nats_url, f"bench-{tag}-{i}"),
                ],
                workdir,
                env,
            ).start()
            for i in range(args.executors)
        ]
        started += [*coordinators, *executors]
        meters: dict[str, Callable[[], float]] = {
            "coordinator": lambda: sum(cpu_seconds(p.pid) for p in coordinators),
            "executor (incl. children)": lambda: sum(
                cpu_seconds(p.pid, children=True) for p in executors
            ),
            "nats-server": lambda: cpu_seconds(nats.pid),
            "bench client": lambda: cpu_seconds(os.getpid()),
        }
        result = asyncio.run(
            watched(
                whoosh_phases(label, nats_url, args, CpuMeter(meters), profile),
                [nats, *coordinators, *executors],
            )
        )
        return {**system, **result}
    finally:
        for proc in reversed(started):
            proc.stop()
        drop_run_data(workdir, f"-{tag}")  # keep the service logs
        run_cleanups(cleanups)
        if args.cprofile:
            _keep_cprofile(args.cprofile, tag, system)


def _keep_cprofile(folder: Path, tag: str, system: dict[str, str]) -> None:
    """The top of each service's cProfile, kept with the system's results."""
    summary = system.setdefault("_cprofile", {})  # type: ignore[arg-type]
    for prof in sorted(folder.glob(f"*-{tag}-*.prof")):
        summary[prof.stem] = cprofile_summary(prof)  # type: ignore[index]


def executor_argv(kind: str, nats_url: str, executor_id: str) -> list[str]:
    if kind == "cli":
        return ["-m", "whoosh_executor_cli", "--nats", nats_url, "--executor-id", executor_id]
    return [str(HERE / "stub_executor.py"), "--nats", nats_url, "--executor-id", executor_id]


# -- Celery -------------------------------------------------------------------------------


def bench_celery(
    args: argparse.Namespace, workdir: Path, round_no: int, work: str = "noop"
) -> dict[str, Any]:
    """`work`: "noop", the issue's peer (a Python function that returns), or "command": the
    same work as a WHOOSH CLI task (the agent's command, `true`, run as a child process)."""
    import redis

    label = f"celery{'' if work == 'noop' else '/' + work} round {round_no}"
    n = args.tasks_per_round
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {REDIS_URL} unavailable: {exc}") from None
    client.flushdb()
    os.environ["BENCH_CELERY_REDIS_URL"] = REDIS_URL
    from celery_noop_app import app, noop, run_command

    task = noop.s() if work == "noop" else run_command.s(list(BENCH_COMMAND), PROMPT)

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
            f"bench-{work}-{os.getpid()}@%h",
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
        task.apply_async().get(timeout=timeout or args.task_timeout)
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
        windowed(2 * args.concurrency, args.concurrency, task, args.task_timeout)

        log(f"[{label}] sequential: {n} tasks, one at a time")
        progress = Progress(f"[{label}] sequential", n)
        latencies = []
        deadline = time.monotonic() + args.phase_limit
        for _ in range(n):
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

        log(f"[{label}] throughput: {n} tasks, {args.concurrency} in flight")
        cpu = CpuMeter(
            {
                "celery worker": lambda: cpu_seconds(worker.pid, children=True),
                "redis-server (whole server)": redis_cpu,
                "bench client": lambda: cpu_seconds(os.getpid()),
            }
        )
        cpu.start()
        conc_latencies, elapsed = windowed(
            n, args.concurrency, task, args.task_timeout, args.phase_limit, label
        )
        cpu_ms = cpu.per_task_ms(n)
        check_worker()
        throughput = {
            "concurrency": args.concurrency,
            "elapsed_s": round(elapsed, 3),
            "tasks_per_s": round(n / elapsed, 2),
            "latency": summarize(conc_latencies),
        }
        log(f"[{label}] throughput {throughput['tasks_per_s']:.1f} tasks/s")
        return {
            "system": CELERY_SYSTEMS[work],
            "sequential": sequential,
            "throughput": throughput,
            "cpu_ms_per_task": cpu_ms,
            "config": "pool=solo, 1 worker process, redis broker+backend, defaults "
            "(acks early, results not fsynced)",
            "durability": CELERY_DURABILITY,
            "_raw": {
                "seq_s": latencies,
                "conc_s": conc_latencies,
                "elapsed_s": elapsed,
                "tasks": n,
            },
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
    """Each system against Celery's no-op (the issue's peer, `vs_celery`) and against
    Celery running the same command (`vs_celery_same_work`), where those were measured."""
    peers = {
        key: next(
            (r for r in results if r["system"] == CELERY_SYSTEMS[work] and "error" not in r), None
        )
        for key, work in (("vs_celery", "noop"), ("vs_celery_same_work", "command"))
    }
    for r in results:
        if "error" in r:
            continue
        for key, peer in peers.items():
            if peer is None:
                continue
            r[key] = {
                "p50_ratio": round(r["sequential"]["p50_ms"] / peer["sequential"]["p50_ms"], 3),
                "throughput_ratio": round(
                    r["throughput"]["tasks_per_s"] / peer["throughput"]["tasks_per_s"], 3
                ),
            }
        if not r["system"].startswith("Celery") and "vs_celery" in r:
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
        "p50 / tasks/s vs Celery running `true`",
        "load avg (1 min) during",
        "durability",
    )
    rows = []
    for r in results:
        if "error" in r:
            rows.append(
                (r["system"], "-", "-", "-", "-", f"error: {r['error'][:60]}", "-", "-", "-")
            )
            continue
        vs = r.get("vs_celery")
        same = r.get("vs_celery_same_work")
        loads = r.get("load_1min", [])
        rows.append(
            (
                r["system"],
                f"{r['sequential']['p50_ms']:.2f}",
                f"{r['sequential']['p99_ms']:.2f}",
                f"{r['throughput']['tasks_per_s']:.1f}",
                f"{vs['p50_ratio']:.2f}x" if vs else "-",
                f"{vs['throughput_ratio']:.2f}x" if vs else "-",
                f"{same['p50_ratio']:.2f}x / {same['throughput_ratio']:.2f}x" if same else "-",
                f"{min(loads):.1f}-{max(loads):.1f}" if loads else "-",
                r.get("durability", "-"),
            )
        )
    print()
    print_markdown([head, *rows])
    print(
        "issue 11 targets (against Celery's no-op): SQLite p50 <= 2.0x Celery's and tasks/s "
        ">= 1.2x; PostgreSQL p50 <= 2.5x and tasks/s >= 1.0x. The same-work column is for "
        "comparison only: Celery running the command each WHOOSH task runs"
    )


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's rounds as one result: latencies pooled, tasks/s = all tasks over all
    throughput time, CPU per task averaged; the profile from the round that has one."""
    good = [r for r in rounds if "error" not in r]
    if not good:
        return rounds[-1]
    first = good[0]
    seq = [x for r in good for x in r["_raw"]["seq_s"]]
    conc = [x for r in good for x in r["_raw"]["conc_s"]]
    tasks = sum(r["_raw"]["tasks"] for r in good)
    elapsed = sum(r["_raw"]["elapsed_s"] for r in good)
    merged = {k: v for k, v in first.items() if k not in ("_raw", "profile", "profile_loaded")}
    merged["sequential"] = summarize(seq)
    merged["throughput"] = {
        "concurrency": first["throughput"]["concurrency"],
        "elapsed_s": round(elapsed, 3),
        "tasks_per_s": round(tasks / elapsed, 2),
        "latency": summarize(conc),
        "per_round_tasks_per_s": [r["throughput"]["tasks_per_s"] for r in good],
    }
    merged["per_round_p50_ms"] = [r["sequential"]["p50_ms"] for r in good]
    merged["cpu_ms_per_task"] = {
        name: round(statistics.fmean(r["cpu_ms_per_task"][name] for r in good), 3)
        for name in first["cpu_ms_per_task"]
    }
    merged["load_1min"] = [x for r in good for x in r.get("load_1min", [])]
    merged["rounds"] = len(good)
    for key in ("profile", "profile_loaded"):
        profiled = [r[key] for r in good if key in r]
        if profiled:
            merged[key] = profiled[-1]
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        merged["round_errors"] = errors
    return merged


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
        loaded = r.get("profile_loaded") or {"steps": [], "extras": [], "tasks": 0}
        concurrency = r["throughput"]["concurrency"]
        print(
            f"\nWhere the time goes, {r['system']}: p50 ms over {prof['tasks']} tasks one at a "
            f"time (end to end {prof['end_to_end_p50_ms']}) and over {loaded['tasks']} with "
            f"{concurrency} in flight (end to end {loaded.get('end_to_end_p50_ms')})"
        )
        print(f"  {'step':<38} {'alone':>7} {'C=' + str(concurrency):>7}")
        for key, indent in (("steps", "  "), ("extras", "    ")):
            if key == "extras":
                print("  side measurements:")
            under_load = {step["step"]: step["p50_ms"] for step in loaded[key]}
            for step in prof[key]:
                name = f"{indent}{step['step']}"
                print(
                    f"{name:<40} {_ms(step['p50_ms'])} {_ms(under_load.get(step['step']))}  "
                    f"{step['what']}"
                )


def _ms(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.2f}"


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
    parser.add_argument(
        "--celery-work",
        default="noop,command",
        help="Celery peers, comma-separated: noop (a function that returns: the issue's "
        "peer), command (the same work as a WHOOSH CLI task: `true` as a child process); "
        "default both",
    )
    parser.add_argument("--warmup", type=int, default=50, help="sequential warm-up tasks")
    parser.add_argument(
        "--profile-tasks",
        type=int,
        default=30,
        help="sequential WHOOSH tasks traced step by step (and ten times as many with "
        "--concurrency in flight); default 30",
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
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="the systems take turns R times, each turn --tasks/R tasks per phase; default 2",
    )
    parser.add_argument(
        "--sync",
        default="normal",
        help="WHOOSH commit durability(ies), comma-separated: normal, full (store.sync)",
    )
    parser.add_argument(
        "--event-loop",
        default="uvloop",
        help="the services' event loop(s), comma-separated: uvloop, asyncio "
        "(WHOOSH_EVENT_LOOP); default uvloop",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also measure the services of another checkout (e.g. a `git worktree` of main) "
        "in the same rounds: a before/after in one run",
    )
    parser.add_argument(
        "--executors", type=int, default=1, help="executor processes per WHOOSH system"
    )
    parser.add_argument(
        "--coordinators",
        type=int,
        default=1,
        help="coordinator processes per WHOOSH system (PostgreSQL only when > 1)",
    )
    args = parser.parse_args(argv)
    if not set(args.celery_work.split(",")) <= set(CELERY_SYSTEMS):
        parser.error(f"--celery-work takes {', '.join(CELERY_SYSTEMS)}")
    if args.tasks < 2 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--tasks must be >= 2, --concurrency and --rounds >= 1")
    args.tasks_per_round = max(2, args.tasks // args.rounds)
    if args.coordinators > 1 and "sqlite" in args.stores:
        parser.error("--coordinators > 1 needs --stores postgres (one SQLite file, one writer)")
    if args.executors < 1 or args.coordinators < 1:
        parser.error("--executors and --coordinators must be >= 1")
    return args


def systems_of(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The systems measured, Celery first; each WHOOSH store with each commit durability."""
    stores = [x.strip() for x in args.stores.split(",") if x.strip()]
    syncs = [x.strip() for x in args.sync.split(",") if x.strip()]
    out: list[dict[str, Any]] = []
    if not args.skip_celery:
        out += [{"system": CELERY_SYSTEMS[w], "celery": w} for w in args.celery_work.split(",")]
    loops = [x.strip() for x in args.event_loop.split(",") if x.strip()]
    for store in stores:
        for sync in syncs:
            for loop in loops:
                scale = ""
                if args.executors > 1 or args.coordinators > 1:
                    scale = f", {args.coordinators} coord x {args.executors} exec"
                named_loop = f", {loop}" if len(loops) > 1 else ""
                out.append(
                    {
                        "system": f"WHOOSH ({store}, sync={sync}{named_loop}{scale})",
                        "store": store,
                        "sync": sync,
                        "loop": loop,
                        "durability": DURABILITY.get((store, sync), "?"),
                    }
                )
    if args.baseline:
        src = os.pathsep.join(
            str(p)
            for p in sorted(args.baseline.glob("*/src"))
            + sorted(args.baseline.glob("services/*/src"))
        )
        for store in stores:
            out.append(
                {
                    "system": f"WHOOSH before ({store}, {args.baseline.name})",
                    "store": store,
                    "sync": syncs[0],
                    "loop": loops[0],
                    "src": src,
                    "durability": DURABILITY.get((store, syncs[0]), "?"),
                }
            )
    return out


def run_round(
    system: dict[str, Any], args: argparse.Namespace, workdir: Path, n: int, last: bool
) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    try:
        if "store" in system:
            keys = ("system", "store", "sync", "loop", "durability", "src")
            spec = {k: system[k] for k in keys if k in system}
            result = bench_whoosh(spec, args, workdir, n, profile=last)
            if spec.get("_cprofile"):
                system.setdefault("cprofile_top", {}).update(spec["_cprofile"])
        else:
            result = bench_celery(args, workdir, n, system["celery"])
    except BenchError as exc:
        log(f"[{system['system']} round {n}] FAILED: {exc}")
        result = {**system, "error": str(exc)}
    result["load_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    systems = systems_of(args)
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-"))
    log(
        f"no-op benchmark: {args.tasks} tasks per phase in {args.rounds} rounds, concurrency "
        f"{args.concurrency}, systems: {'; '.join(s['system'] for s in systems)}; "
        f"{os.cpu_count()} CPUs; logs in {workdir}"
    )
    load_before = load_before_run()
    rounds: dict[str, list[dict[str, Any]]] = {s["system"]: [] for s in systems}
    try:
        for n in range(1, args.rounds + 1):
            # The sides alternate, and their order flips each round, so that drift in the
            # machine's load (other users of its CPUs) touches every system alike.
            order = systems if n % 2 else list(reversed(systems))
            for system in order:
                rounds[system["system"]].append(
                    run_round(system, args, workdir, n, last=n == args.rounds)
                )
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        Proc.stop_all()
        return 130
    finally:
        Proc.stop_all()

    results = []
    for system in systems:
        merged = merge_rounds(rounds[system["system"]])
        if system.get("cprofile_top"):
            merged["cprofile_top"] = system["cprofile_top"]
        merged.pop("_raw", None)
        results.append(merged)
    exit_code = 1 if any("error" in r for r in results) else 0
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
