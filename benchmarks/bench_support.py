"""What the benchmarks share: child processes, CPU meters, timing summaries and set-up.

`bench_noop.py`, `bench_llm_overhead.py`, `bench_ssh_overhead.py` and `bench_gateway.py`
all start a private WHOOSH (nats-server, coordinator, executor) on loopback and must stop
every process they started whatever happens, fail fast with a log tail when one dies,
wait for tasks' terminal events, alternate the sides they compare, and report latencies
and the machine the same way; the code for that lives here once instead of drifting apart
in copies.

Not part of the test suite, and not a library: only the scripts beside it import it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import SubmitTask
from whoosh_shared.runtime.bus import Bus

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PG_ADMIN_URL = os.environ.get("WHOOSH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

T0 = time.monotonic()
TERMINAL_EVENTS = ("TaskCompleted", "TaskFailed", "TaskTimedOut", "TaskCancelled")


class BenchError(RuntimeError):
    """The benchmark could not measure something (a service died, a task failed, timeouts)."""


def log(message: str) -> None:
    """One line of progress, stamped with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


class Progress:
    """A progress line at most every few seconds during a long phase."""

    def __init__(self, label: str, total: int, every_s: float = 3.0) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.done = 0
        self.last = time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.every_s and self.done < self.total:
            self.last = now
            log(f"{self.label}: {self.done}/{self.total}")


# -- processes ------------------------------------------------------------------------


class Proc:
    """A child process in its own session, logged to a file, always stopped at the end."""

    running: list[Proc] = []

    def __init__(
        self,
        name: str,
        argv: list[str],
        logdir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name, self.argv, self.cwd = name, argv, cwd or REPO
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        Proc.running.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM, then SIGKILL to its process group (its own session) if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(ValueError):
            Proc.running.remove(self)

    def tail(self, lines: int = 15) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @classmethod
    def stop_all(cls) -> None:
        for proc in reversed(list(cls.running)):
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop {proc.name}: {exc}", file=sys.stderr)


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User+system CPU of a process from /proc (plus its reaped children's, if asked)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by named processes between `start` and `stop`."""

    def __init__(self, sources: dict[str, Callable[[], float]]) -> None:
        self.sources = sources
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: read() for name, read in self.sources.items()}

    def per_task_ms(self, tasks: int) -> dict[str, float]:
        return {
            name: round((read() - self.before[name]) * 1000 / tasks, 3)
            for name, read in self.sources.items()
        }


# -- statistics -------------------------------------------------------------------------


def summarize(latencies_s: list[float], percentiles: Sequence[int] = (90, 99)) -> dict[str, float]:
    """n, p50, the asked percentiles, mean, min and max, in milliseconds."""
    ms = sorted(x * 1000 for x in latencies_s)
    if len(ms) < 2:
        ms = ms * 2 or [float("nan")] * 2
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "n": len(latencies_s),
        "p50_ms": round(statistics.median(ms), 3),
        **{f"p{p}_ms": round(q[p - 1], 3) for p in percentiles},
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
    }


# -- runs -----------------------------------------------------------------------------


async def wait_for_coordinator(bus: Bus, timeout: float = 30.0) -> None:
    """Until the coordinator answers queries (it has replayed its store and listens)."""
    deadline = time.monotonic() + timeout
    while True:
        if await bus.coordinator_answers(timeout=2):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the coordinator did not answer within {timeout:g}s")
        await asyncio.sleep(0.2)


async def run_concurrent(
    label: str, n: int, concurrency: int, one: Callable[[], Any], deadline_s: float
) -> tuple[list[dict[str, Any]], float]:
    """n tasks with `concurrency` in flight; returns the results and the elapsed seconds."""
    progress = Progress(label, n)
    results: list[dict[str, Any]] = []
    remaining = iter(range(n))

    async def lane() -> None:
        for _ in remaining:
            results.append(await one())
            progress.step()

    started = time.perf_counter()
    lanes = asyncio.gather(*(lane() for _ in range(concurrency)))
    try:
        await asyncio.wait_for(lanes, deadline_s)
    except TimeoutError:
        raise BenchError(f"{label}: over the phase limit of {deadline_s:g}s") from None
    finally:
        # Cancelled from outside (Ctrl-C, a service died), the gather ends holding a
        # CancelledError nobody reads, and asyncio would print it as a stray traceback.
        if lanes.done() and not lanes.cancelled():
            lanes.exception()
    return results, time.perf_counter() - started


async def watched(main: Any, procs: list[Proc]) -> Any:
    """Run `main`, failing fast with the log tail if one of `procs` dies meanwhile."""
    task = asyncio.ensure_future(main)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            for proc in procs:
                if not proc.alive() and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    raise BenchError(
                        f"{proc.name} exited with {proc.proc.returncode if proc.proc else '?'}; "
                        f"last lines of {proc.log}:\n{proc.tail()}"
                    )
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def make_pg_schema() -> tuple[str, Callable[[], None]]:
    """A fresh schema, so a run starts on an empty store; its URL and the drop to call."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL at {PG_ADMIN_URL} unavailable: {exc}") from None

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    return f"{PG_ADMIN_URL.split('?')[0]}?schema={name}", drop


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all raise KeyboardInterrupt, so the `finally` that stops
    the children runs; Ctrl-C even where SIGINT was inherited as ignored (a background job
    of a script)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def int_list(text: str) -> list[int]:
    """`1,10,50` -> [1, 10, 50] (a command-line list of concurrencies)."""
    return [int(x) for x in text.split(",") if x.strip()]


def event_time(envelope: dict[str, Any]) -> float:
    """An event's own timestamp (set by the coordinator when it raised it), epoch seconds."""
    return datetime.fromisoformat(envelope["timestamp"]).timestamp()


def wait_listening(proc: Proc, port: int, timeout: float = 20.0) -> None:
    """Until `proc` listens on 127.0.0.1:`port`; a BenchError with its log tail if it dies
    or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited; last lines of {proc.log}:\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{proc.name} not listening on {port} after {timeout:g}s:\n{proc.tail()}")


def p50_ms(values: list[float | None]) -> float | None:
    """Median in ms of the values known (an event the client missed is None)."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known) * 1000, 3) if known else None


def print_markdown(rows: Sequence[tuple[str, ...]]) -> None:
    """Rows (the first is the head) as a Markdown table, columns padded so it reads in a
    terminal too."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    print(line(rows[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows[1:]:
        print(line(row))


# -- tasks' ends ----------------------------------------------------------------------


class TaskEnds:
    """Tasks' terminal events as a client sees them: subscribed (wildcards) before anything
    is submitted, since a task's id is only known from the submit reply, which its events
    may beat; an end that arrives first is kept until asked for."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        # task id -> (perf_counter, time.time() when seen, the event's envelope)
        self.ended: dict[str, tuple[float, float, dict[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self) -> None:
        """Subscribe (without flushing: the caller flushes after its own subscriptions)."""
        for event_type in TERMINAL_EVENTS:
            subject = subjects.events_of_type("task", event_type)
            await self.bus.nc.subscribe(subject, cb=self._on_end)

    async def _on_end(self, msg: Any) -> None:
        seen, seen_wall = time.perf_counter(), time.time()
        envelope = json.loads(msg.data)
        task_id = envelope["aggregate_id"]
        self.ended[task_id] = (seen, seen_wall, envelope)
        waiter = self.waiters.pop(task_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, task_id: str, limit: float) -> tuple[float, float, dict[str, Any]]:
        """The task's end (when seen, perf_counter and wall clock; its envelope); a
        BenchError after `limit` seconds."""
        if task_id not in self.ended:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters[task_id] = waiter
            try:
                await asyncio.wait_for(waiter, limit)
            except TimeoutError:
                self.waiters.pop(task_id, None)
                raise BenchError(f"task {task_id}: no end within {limit:g}s") from None
        return self.ended.pop(task_id)

    async def run(self, command: SubmitTask, limit: float) -> TaskRun:
        """Submit `command` and wait (up to `limit` s after the reply) for the task's end."""
        sent_wall, sent = time.time(), time.perf_counter()
        reply = await self.bus.send(command, timeout=10)
        replied_wall = time.time()
        if not reply.accepted:
            raise BenchError(f"SubmitTask rejected: {reply.code}: {reply.reason}")
        task_id = reply.ids["task_id"]
        done, done_wall, envelope = await self.wait(task_id, limit)
        return TaskRun(task_id, sent, sent_wall, replied_wall, done, done_wall, envelope)


@dataclass(frozen=True)
class TaskRun:
    """One submitted task, as its client saw it: perf_counter and wall-clock (epoch s)
    marks, and its terminal event."""

    task_id: str
    sent: float
    sent_wall: float
    replied_wall: float
    done: float
    done_wall: float
    envelope: dict[str, Any]


# -- comparisons ----------------------------------------------------------------------


@dataclass
class SideRun:
    """What one side of a comparison did in one phase, summed over its rounds."""

    results: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: Counter[str] = field(default_factory=Counter)

    def figures(self) -> dict[str, Any]:
        """Elapsed seconds, tasks per second and CPU ms per task of each meter's process."""
        n = len(self.results)
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "per_s": round(n / self.elapsed_s, 2),
            "cpu_ms_per_task": {k: round(v * 1000 / n, 3) for k, v in self.cpu_s.items()},
        }


async def alternate_sides(
    label: str,
    sides: dict[str, Callable[[], Awaitable[dict[str, Any]]]],
    *,
    tasks: int,
    concurrency: int,
    rounds: int,
    warmup: int,
    phase_limit: float,
    cpu: CpuMeter,
) -> dict[str, SideRun]:
    """One concurrency of a comparison: `max(warmup, concurrency)` warm-up tasks each side,
    then `tasks` each side, `concurrency` in flight, the sides alternating in `rounds`
    rounds, so that a slow drift in the machine's load (it is shared) touches them alike.
    The CPU of `cpu`'s processes is summed per side."""
    warmup = max(warmup, concurrency)
    log(f"[{label}] warm-up: {warmup} tasks each way")
    for name, one in sides.items():
        await run_concurrent(f"[{label}] warm-up {name}", warmup, concurrency, one, phase_limit)

    runs = {name: SideRun() for name in sides}
    per_round = [tasks // rounds + (i < tasks % rounds) for i in range(rounds)]
    log(f"[{label}] {tasks} tasks each way, {concurrency} in flight, {rounds} rounds")
    for round_tasks in per_round:
        for name, one in sides.items():
            before = {key: read() for key, read in cpu.sources.items()}
            done, seconds = await run_concurrent(
                f"[{label}] {name}", round_tasks, concurrency, one, phase_limit
            )
            for key, read in cpu.sources.items():
                runs[name].cpu_s[key] += read() - before[key]
            runs[name].results += done
            runs[name].elapsed_s += seconds
    return runs


# -- services -------------------------------------------------------------------------


def start_nats(
    workdir: Path, *, name: str = "nats-server", data: str = "nats", logdir: Path | None = None
) -> tuple[Proc, str]:
    """A fresh JetStream nats-server on a free loopback port (its store in workdir/`data`,
    its log in `logdir`, default workdir), once it listens; it and its URL."""
    from harness import free_port, nats_server_binary  # tests/ is on the scripts' sys.path

    port = free_port()
    listen = ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(workdir / data)]
    nats = Proc(name, [nats_server_binary(), *listen], logdir or workdir).start()
    wait_listening(nats, port)
    return nats, f"nats://127.0.0.1:{port}"


def whoosh_env(
    config: Path, data_dir: Path, max_parallel: int, store_sync: str = "normal"
) -> dict[str, str]:
    """Write a whoosh.yaml (data folder, executor slots, commit durability) to `config`;
    the services' env."""
    text = f"data_dir: {data_dir}\nexecutor:\n  max_parallel: {max_parallel}\n"
    if store_sync != "default":  # "default": a build from before store.sync existed
        text += f"store:\n  sync: {store_sync}\n"
    config.write_text(text)
    return {"WHOOSH_CONFIG": str(config), "WHOOSH_LOG_LEVEL": "WARNING"}


def cprofile_summary(path: Path, top: int = 15) -> list[dict[str, Any]]:
    """The functions with the most own time in a cProfile file, for the JSON report."""
    import pstats

    if not path.is_file():
        return []
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": calls,
                "own_ms": round(own * 1000, 1),
                "cumulative_ms": round(cumulative * 1000, 1),
            }
        )
    rows.sort(key=lambda r: r["own_ms"], reverse=True)
    return rows[:top]


def python_argv(cprofile: Path | None, name: str) -> list[str]:
    """The interpreter, under cProfile when `cprofile` names a folder (the profile is
    written there on SIGTERM)."""
    if not cprofile:
        return [sys.executable]
    cprofile.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "cProfile", "-o", str(cprofile / f"{name}.prof")]


def drop_run_data(workdir: Path, suffix: str = "") -> None:
    """Delete a run's JetStream, data folder and SQLite store; keep the service logs."""
    shutil.rmtree(workdir / f"nats{suffix}", ignore_errors=True)
    shutil.rmtree(workdir / f"data{suffix}", ignore_errors=True)
    for leftover in workdir.glob(f"events{suffix}.sqlite*"):
        leftover.unlink(missing_ok=True)


def run_cleanups(cleanups: list[Callable[[], None]]) -> None:
    """Call each; a failure is a warning, and the others still run."""
    for cleanup in cleanups:
        try:
            cleanup()
        except Exception as exc:
            print(f"warning: cleanup failed: {exc}", file=sys.stderr)


# -- reports --------------------------------------------------------------------------


def failure_of(run: Callable[[], None]) -> str | None:
    """Run a benchmark's measurements: None, or why they failed (a BenchError, logged).
    Ctrl-C / SIGTERM is logged and exits with 130 (the children are stopped by then)."""
    try:
        run()
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return str(exc)
    except KeyboardInterrupt:
        log("interrupted: every process this benchmark started has been stopped")
        raise SystemExit(130) from None
    return None


def load_before_run() -> tuple[float, float, float]:
    """The load average now, with a note when the machine is already busy."""
    load = os.getloadavg()
    if load[0] > 0.5:
        log(
            f"note: the machine is busy (load average {load[0]:.2f}): other processes "
            "compete for the CPUs, so expect noisier and slower numbers"
        )
    return load


def machine(load_before: tuple[float, float, float], **extra: str) -> dict[str, Any]:
    """The report's description of the machine, load average before and after included."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def plain_args(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's values as JSON can hold them (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def write_report(output: Path, name: str, report: dict[str, Any]) -> Path:
    """The JSON report as output/`name`-<date>-<time>.json; its path."""
    output.mkdir(parents=True, exist_ok=True)
    out = output / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    return out
