"""What the benchmarks share: child processes, CPU meters, timing summaries and set-up.

`bench_noop.py` and `bench_llm_overhead.py` both start a private WHOOSH (nats-server,
coordinator, executor) on loopback and must stop every process they started whatever
happens, fail fast with a log tail when one dies, and report latencies the same way; the
code for that lives here once instead of drifting apart in two copies.

Not part of the test suite, and not a library: only the scripts beside it import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from whoosh_shared.bus import Bus

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PG_ADMIN_URL = os.environ.get("WHOOSH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

T0 = time.monotonic()


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
