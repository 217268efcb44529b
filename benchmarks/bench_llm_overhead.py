#!/usr/bin/env python
"""What WHOOSH adds to an Ollama call: time to first token and total, against calling the
same server directly with httpx.

    .venv/bin/python benchmarks/bench_llm_overhead.py [--concurrency 1,8,64]
                                                      [--tasks 64,256,1024] [--pin]
                                                      [--store sqlite|postgres]

It starts, on loopback, four Ollama test servers (`tests/executor_ollama/ollama_double.py`,
each in its own process, paced to a short realistic generation), a fresh nats-server, a
coordinator and executor-ollama, and registers one `ollama` agent per server. For each
concurrency C it then runs the same chat request both ways, C at a time, alternating
rounds: directly (httpx streaming POST /api/chat, servers round-robin) and through WHOOSH
(SubmitTask; first token = first `whoosh.progress.<task>` line, total = TaskCompleted).
The table (p50/p95 of both, ratio and added milliseconds) is printed and written as JSON
to benchmarks/results/. See benchmarks/README.md.

Not part of the test suite. Every process it starts is stopped at the end, on errors and
on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # the test harness: nats-server binary, free ports
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
from bench_support import (  # noqa: E402
    BenchError,
    CpuMeter,
    Proc,
    TaskEnds,
    alternate_sides,
    cpu_seconds,
    drop_run_data,
    event_time,
    failure_of,
    install_signal_handlers,
    int_list,
    load_before_run,
    log,
    machine,
    make_pg_schema,
    p50_ms,
    plain_args,
    print_markdown,
    python_argv,
    run_cleanups,
    start_nats,
    summarize,
    wait_for_coordinator,
    wait_listening,
    watched,
    whoosh_env,
    write_report,
)
from harness import free_port  # noqa: E402
from whoosh_shared.contract import subjects  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec  # noqa: E402
from whoosh_shared.contract.commands import RegisterAgent, RejectCode, RetryPolicy, SubmitTask  # noqa: E402
from whoosh_shared.contract.enums import AgentType  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

MODEL = "llama3.2:1b"  # one of the models the double has "pulled"
PROMPT = "Describe a quick brown fox in one sentence."
SENTENCE = (
    "The quick brown fox jumps over the lazy dog while the farmer watches from "
    "the porch and the sun sets slowly behind the hills of the quiet valley"
)
PERCENTILES = (95, 99)


def reply_text(tokens: int) -> str:
    """The double's answer: `tokens` words (the double streams one word per chunk)."""
    return " ".join(itertools.islice(itertools.cycle(SENTENCE.split()), tokens)) + "."


# -- the Ollama servers (run as `bench_llm_overhead.py serve-double ...`) -----------------


def serve_double(argv: list[str]) -> int:
    """One Ollama double on a given port until SIGTERM/SIGINT.

    Its own process, so that the servers never compete with the measuring client for an
    event loop (the double's own thread mode would share the client's GIL)."""
    parser = argparse.ArgumentParser(prog="bench_llm_overhead.py serve-double")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--tokens-per-s", type=float, required=True)
    parser.add_argument("--ttft-ms", type=float, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests" / "executor_ollama"))
    import uvicorn
    from ollama_double import DoubleConfig, OllamaDouble

    double = OllamaDouble(
        DoubleConfig(
            reply=reply_text(args.tokens),
            tokens_per_s=args.tokens_per_s,
            ttft_s=args.ttft_ms / 1000,
            parallel=args.parallel,
        )
    )
    double.port = args.port
    config = uvicorn.Config(
        double.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run()  # main thread: uvicorn handles SIGTERM/SIGINT itself
    return 0


def start_doubles(args: argparse.Namespace, workdir: Path) -> list[tuple[Proc, str]]:
    """The servers, each in its own process and session; their URLs once they listen."""
    started: list[tuple[Proc, int]] = []
    for index in range(args.servers):
        port = free_port()
        proc = Proc(
            f"ollama-double-{index}",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "serve-double",
                "--port",
                str(port),
                "--tokens",
                str(args.tokens),
                "--tokens-per-s",
                str(args.tokens_per_s),
                "--ttft-ms",
                str(args.ttft_ms),
                "--parallel",
                "1024",
            ],
            workdir,
        ).start()
        started.append((proc, port))
    for proc, port in started:
        wait_listening(proc, port)
    return [(proc, f"http://127.0.0.1:{port}") for proc, port in started]


# -- the two clients ------------------------------------------------------------------


# The direct side's httpx settings: what executor-ollama used while it was on httpx (its
# timeouts and pool limits; the executor is on aiohttp now, with the same values). The
# direct side is left as it was so that its figures compare with earlier runs.
DIRECT_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=30.0, pool=30.0)
DIRECT_LIMITS = httpx.Limits(
    max_connections=1000, max_keepalive_connections=256, keepalive_expiry=1.0
)


class DirectClient:
    """Streams the chat request straight to the servers, round-robin.

    It uses the executor's timeouts and pool limits (on httpx, see DIRECT_TIMEOUT) and the
    body the executor sends, so the difference to WHOOSH is WHOOSH's path, not tuning."""

    def __init__(self, urls: list[str], expected: str, task_timeout: float) -> None:
        self.urls, self.expected, self.task_timeout = urls, expected, task_timeout
        self.http = httpx.AsyncClient(timeout=DIRECT_TIMEOUT, limits=DIRECT_LIMITS)
        self.turn = itertools.count()
        self.body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
        }

    async def close(self) -> None:
        await self.http.aclose()

    async def run_one(self) -> dict[str, Any]:
        url = self.urls[next(self.turn) % len(self.urls)]
        try:
            return await asyncio.wait_for(self._call(url), self.task_timeout)
        except TimeoutError:
            raise BenchError(f"direct call to {url}: over {self.task_timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise BenchError(f"direct call to {url} failed: {exc!r}") from None

    async def _call(self, url: str) -> dict[str, Any]:
        sent = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        async with self.http.stream("POST", f"{url}/api/chat", json=self.body) as response:
            if response.status_code != 200:
                content = (await response.aread())[:300]
                raise BenchError(f"{url} answered {response.status_code}: {content!r}")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                part = json.loads(line)
                if "error" in part:
                    raise BenchError(f"{url} streamed an error: {part['error']}")
                text = (part.get("message") or {}).get("content") or ""
                if text:
                    parts.append(text)
                    if first is None:
                        first = time.perf_counter()
                if part.get("done"):
                    done = time.perf_counter()
                    break
            else:
                raise BenchError(f"{url}: the stream ended without its done chunk")
        if first is None or "".join(parts) != self.expected:
            raise BenchError(f"{url}: unexpected answer {''.join(parts)[:200]!r}")
        return {"ttft_s": first - sent, "total_s": done - sent}


class WhooshClient:
    """Submits the same request as a task and watches the bus for its first token line
    and its end.

    Every subscription is made before anything is submitted: wildcards, since a task's id
    is only known from the submit reply, and a token line may in principle beat it."""

    def __init__(
        self, bus: Bus, expected: str, task_timeout: float, pin_to: list[str] | None
    ) -> None:
        self.bus, self.expected, self.task_timeout = bus, expected, task_timeout
        self.pin_to = pin_to
        self.turn = itertools.count()
        self.first_token: dict[str, float] = {}  # task id -> perf_counter of its first line
        # task id -> (agent, TaskAssigned's own timestamp) and TaskStarted's timestamp,
        # both taken by the coordinator (same machine, same clock as the client's).
        self.assigned: dict[str, tuple[str, float]] = {}
        self.started_wall: dict[str, float] = {}
        self.ends = TaskEnds(bus)

    async def start(self) -> None:
        nc = self.bus.nc
        await nc.subscribe(f"{subjects.PROGRESS_PREFIX}.*", cb=self._on_progress)
        await nc.subscribe(subjects.events_of_type("task", "TaskAssigned"), cb=self._on_assigned)
        await nc.subscribe(subjects.events_of_type("task", "TaskStarted"), cb=self._on_started)
        await self.ends.subscribe()
        await nc.flush()

    async def _on_progress(self, msg: Any) -> None:
        seen = time.perf_counter()
        task_id = msg.subject.rsplit(".", 1)[-1]
        if task_id in self.first_token:
            return  # only the first line matters; parsing the others would slow the client
        line = json.loads(msg.data)
        if line.get("stream") == "token" and line.get("line"):
            self.first_token[task_id] = seen

    async def _on_assigned(self, msg: Any) -> None:
        envelope = json.loads(msg.data)
        self.assigned[envelope["aggregate_id"]] = (
            envelope["data"]["agent_name"],
            event_time(envelope),
        )

    async def _on_started(self, msg: Any) -> None:
        envelope = json.loads(msg.data)
        self.started_wall[envelope["aggregate_id"]] = event_time(envelope)

    async def run_one(self, timeout: float | None = None) -> dict[str, Any]:
        """One task, submit to TaskCompleted; its TTFT, total and the executor's view.

        `timeout` (default: the task's own timeout plus 5 s) bounds the wait for its end."""
        pinned = None
        if self.pin_to:
            pinned = self.pin_to[next(self.turn) % len(self.pin_to)]
        command = SubmitTask(
            prompt=PROMPT,
            agent_type=AgentType.OLLAMA,
            model=MODEL,
            agent=pinned,
            timeout_s=self.task_timeout,
            retry=RetryPolicy(max_attempts=1),
            actor="bench",
        )
        run = await self.ends.run(command, timeout or self.task_timeout + 5)
        task_id, envelope = run.task_id, run.envelope
        data = envelope.get("data", {})
        if envelope["type"] != "TaskCompleted":
            raise BenchError(
                f"task {task_id} ended with {envelope['type']}: {data.get('reason')!r} "
                f"(output {data.get('output', '')[-300:]!r})"
            )
        if data.get("output") != self.expected:
            raise BenchError(f"task {task_id}: unexpected output {data.get('output')!r:.200}")
        first = self.first_token.get(task_id)
        if first is None:
            raise BenchError(f"task {task_id} completed, but no token line reached the client")
        usage = data.get("usage") or {}
        started = self.started_wall.pop(task_id, None)
        agent, assigned = self.assigned.pop(task_id, ("?", None))
        return {
            "ttft_s": first - run.sent,
            "total_s": run.done - run.sent,
            "exec_ttft_s": usage.get("time_to_first_token_s", 0.0),
            "exec_call_s": usage.get("duration_s", 0.0),
            "to_assigned_s": None if assigned is None else assigned - run.sent_wall,
            "to_started_s": None if started is None else started - run.sent_wall,
            "agent": agent,
        }


async def register_agents(bus: Bus, urls: list[str], slots: int) -> list[str]:
    """One `ollama` agent per server; their names."""
    names = []
    for index, url in enumerate(urls):
        spec = AgentSpec(
            name=f"bench-llm-{index}",
            type=AgentType.OLLAMA,
            endpoint=url,
            model=MODEL,
            max_concurrent=slots,
        )
        reply = await bus.send(RegisterAgent(spec=spec, actor="bench"))
        if not reply.accepted and reply.code != RejectCode.DUPLICATE.value:
            raise BenchError(f"RegisterAgent rejected: {reply.code}: {reply.reason}")
        names.append(spec.name)
    return names


# -- the phases -------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace,
    nats_url: str,
    urls: list[str],
    cpu: CpuMeter,
    phases: list[dict[str, Any]],
) -> None:
    """Every concurrency: warm-up, then alternating direct and WHOOSH rounds. Each phase
    is appended to `phases` as it ends, so a later failure keeps the earlier figures."""
    expected = reply_text(args.tokens)
    bus = Bus(nats_url, "whoosh-bench-llm")
    await bus.connect()
    direct = DirectClient(urls, expected, args.task_timeout)
    try:
        log("waiting for the coordinator")
        await wait_for_coordinator(bus)
        agents = await register_agents(bus, urls, args.agent_slots)
        whoosh = WhooshClient(bus, expected, args.task_timeout, agents if args.pin else None)
        await whoosh.start()
        log("first task (also waits for the executor to bind its work consumer)")
        await whoosh.run_one(timeout=90)
        await direct.run_one()
        for concurrency, tasks in zip(args.concurrency, args.tasks, strict=True):
            phases.append(await measure_phase(args, concurrency, tasks, direct, whoosh, cpu))
    finally:
        with contextlib.suppress(Exception):
            await direct.close()
        with contextlib.suppress(Exception):
            await bus.close()


async def measure_phase(
    args: argparse.Namespace,
    concurrency: int,
    tasks: int,
    direct: DirectClient,
    whoosh: WhooshClient,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """One concurrency: the two sides alternate in `args.rounds` rounds (`alternate_sides`)."""
    label = f"C={concurrency}"
    sides: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "direct": direct.run_one,
        "whoosh": whoosh.run_one,
    }
    side_runs = await alternate_sides(
        label,
        sides,
        tasks=tasks,
        concurrency=concurrency,
        rounds=args.rounds,
        warmup=args.warmup,
        phase_limit=args.phase_limit,
        cpu=cpu,
    )
    phase: dict[str, Any] = {"concurrency": concurrency, "tasks": tasks}
    for name, run in side_runs.items():
        phase[name] = {
            "ttft": summarize([r["ttft_s"] for r in run.results], PERCENTILES),
            "total": summarize([r["total_s"] for r in run.results], PERCENTILES),
            **run.figures(),
        }
    runs = side_runs["whoosh"].results
    phase["whoosh"]["agents"] = dict(sorted(Counter(r["agent"] for r in runs).items()))
    phase["whoosh"]["breakdown_p50_ms"] = {
        "submit_to_assigned": p50_ms([r["to_assigned_s"] for r in runs]),
        "submit_to_started": p50_ms([r["to_started_s"] for r in runs]),
        "executor_call_ttft": p50_ms([r["exec_ttft_s"] for r in runs]),
        "executor_call_total": p50_ms([r["exec_call_s"] for r in runs]),
        "before_first_token": p50_ms([r["ttft_s"] - r["exec_ttft_s"] for r in runs]),
        "after_last_token": p50_ms(
            [r["total_s"] - r["ttft_s"] - (r["exec_call_s"] - r["exec_ttft_s"]) for r in runs]
        ),
    }
    d, w = phase["direct"], phase["whoosh"]
    phase["ratio_p50"] = {
        key: round(w[key]["p50_ms"] / d[key]["p50_ms"], 3) for key in ("ttft", "total")
    }
    phase["added_p50_ms"] = {
        key: round(w[key]["p50_ms"] - d[key]["p50_ms"], 3) for key in ("ttft", "total")
    }
    log(
        f"[{label}] TTFT p50 direct {d['ttft']['p50_ms']:.1f} ms, WHOOSH {w['ttft']['p50_ms']:.1f}"
        f" ms; total p50 direct {d['total']['p50_ms']:.1f} ms, WHOOSH {w['total']['p50_ms']:.1f} ms"
    )
    return phase


# -- the services -----------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace, workdir: Path, phases: list[dict[str, Any]]) -> None:
    """Start everything, measure into `phases`, stop everything (also on failure)."""
    cleanups: list[Callable[[], None]] = []
    try:
        doubles = start_doubles(args, workdir)
        urls = [url for _, url in doubles]
        log(f"{len(urls)} Ollama doubles: {', '.join(urls)}")

        nats, nats_url = start_nats(workdir)
        if args.store == "sqlite":
            store_url = f"sqlite:///{workdir / 'events.sqlite'}"
        else:
            store_url, drop = make_pg_schema()
            cleanups.append(drop)
        max_parallel = max(2 * max(args.concurrency), args.servers * args.agent_slots)
        env = whoosh_env(workdir / "whoosh.yaml", workdir / "data", max_parallel)
        log(f"nats {nats_url}, store {store_url}")
        serve = ["-m", "whoosh_coordinator", "serve", "--nats", nats_url, "--store", store_url]
        coordinator = Proc(
            "coordinator", [*python_argv(args.cprofile, "coordinator"), *serve], workdir, env
        )
        execute = ["-m", "whoosh_executor_ollama", "--nats", nats_url, "--executor-id", "bench"]
        executor = Proc(
            "executor-ollama", [*python_argv(args.cprofile, "executor"), *execute], workdir, env
        )
        coordinator.start()
        executor.start()
        cpu = CpuMeter(
            {
                "coordinator": lambda: cpu_seconds(coordinator.pid),
                "executor-ollama": lambda: cpu_seconds(executor.pid),
                "nats-server": lambda: cpu_seconds(nats.pid),
                "ollama doubles (all)": lambda: sum(cpu_seconds(p.pid) for p, _ in doubles),
                "bench client": lambda: cpu_seconds(os.getpid()),
            }
        )
        procs = [nats, coordinator, executor, *(p for p, _ in doubles)]
        asyncio.run(watched(measure(args, nats_url, urls, cpu, phases), procs))
    finally:
        Proc.stop_all()
        drop_run_data(workdir)  # keep the logs only
        run_cleanups(cleanups)


# -- report -------------------------------------------------------------------------------


def print_tables(phases: list[dict[str, Any]]) -> None:
    def pair(stats: dict[str, float]) -> str:
        return f"{stats['p50_ms']:.1f} / {stats['p95_ms']:.1f}"

    rows = [
        (
            "C",
            "direct TTFT p50/p95",
            "WHOOSH TTFT p50/p95",
            "TTFT ratio",
            "TTFT added",
            "direct total p50/p95",
            "WHOOSH total p50/p95",
            "total ratio",
            "total added",
        )
    ]
    for p in phases:
        d, w = p["direct"], p["whoosh"]
        rows.append(
            (
                str(p["concurrency"]),
                pair(d["ttft"]),
                pair(w["ttft"]),
                f"{p['ratio_p50']['ttft']:.2f}x",
                f"+{p['added_p50_ms']['ttft']:.1f}",
                pair(d["total"]),
                pair(w["total"]),
                f"{p['ratio_p50']['total']:.2f}x",
                f"+{p['added_p50_ms']['total']:.1f}",
            )
        )
    print("\nTimes in ms; ratio and added: WHOOSH p50 against direct p50")
    print_markdown(rows)

    rows = [
        (
            "C",
            "submit -> assigned",
            "submit -> started",
            "call TTFT (executor)",
            "call total (executor)",
            "before first token",
            "after last token",
            "WHOOSH tasks/s",
            "direct calls/s",
        )
    ]
    for p in phases:
        b, w = p["whoosh"]["breakdown_p50_ms"], p["whoosh"]
        rows.append(
            (
                str(p["concurrency"]),
                *(
                    "-" if b[key] is None else f"{b[key]:.1f}"
                    for key in (
                        "submit_to_assigned",
                        "submit_to_started",
                        "executor_call_ttft",
                        "executor_call_total",
                        "before_first_token",
                        "after_last_token",
                    )
                ),
                f"{w['per_s']:.1f}",
                f"{p['direct']['per_s']:.1f}",
            )
        )
    print("\nWhere WHOOSH's time goes (p50 ms per task; see README)")
    print_markdown(rows)

    print("\nCPU ms per task (direct / WHOOSH)")
    for p in phases:
        d, w = p["direct"]["cpu_ms_per_task"], p["whoosh"]["cpu_ms_per_task"]
        parts = [f"{name} {d[name]:.1f}/{w[name]:.1f}" for name in w]
        print(f"  C={p['concurrency']}: " + ", ".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 8, 64],
        help="tasks in flight per phase, comma-separated; default 1,8,64",
    )
    parser.add_argument(
        "--tasks",
        type=int_list,
        help="tasks each way per phase: one number for all, or one per concurrency "
        "(default 64 at C=1, else the larger of 256 and 16*C)",
    )
    parser.add_argument(
        "--servers", type=int, default=4, help="Ollama doubles, one agent each; default 4"
    )
    parser.add_argument("--tokens", type=int, default=30, help="tokens in each answer; default 30")
    parser.add_argument(
        "--tokens-per-s", type=float, default=300.0, help="pace of each stream; default 300"
    )
    parser.add_argument(
        "--ttft-ms", type=float, default=25.0, help="server's time to first token; default 25"
    )
    parser.add_argument(
        "--agent-slots", type=int, default=32, help="max_concurrent of each agent; default 32"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin WHOOSH tasks to the agents round-robin, as the direct calls go; "
        "default: the scheduler places them (agent type + model)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="direct/WHOOSH alternations per phase; default 2"
    )
    parser.add_argument(
        "--warmup", type=int, default=16, help="warm-up tasks each way per phase (at least C)"
    )
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--task-timeout", type=float, default=30.0, help="seconds one task or call may take"
    )
    parser.add_argument(
        "--phase-limit", type=float, default=300.0, help="seconds one side of one round may take"
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="DIR",
        help="run the coordinator and executor under cProfile, .prof files in DIR "
        "(slows them: timings are not comparable then)",
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="folder for the JSON result"
    )
    args = parser.parse_args(argv)
    if args.tasks is None:
        # At least 16 per lane: with fewer, the burst of C tasks started together at the
        # beginning of a round (and the ramp-down at its end) would dominate the figures.
        args.tasks = [64 if c == 1 else max(256, 16 * c) for c in args.concurrency]
    elif len(args.tasks) == 1:
        args.tasks = args.tasks * len(args.concurrency)
    if len(args.tasks) != len(args.concurrency):
        parser.error("--tasks needs one number, or one per --concurrency")
    if min(args.concurrency, default=0) < 1 or min(args.tasks) < 2 * args.rounds:
        parser.error("concurrency must be >= 1 and tasks >= 2 per round")
    if args.servers < 1 or args.tokens < 1 or args.tokens_per_s <= 0 or args.rounds < 1:
        parser.error("--servers, --tokens, --tokens-per-s and --rounds must be positive")
    if args.servers * args.agent_slots < max(args.concurrency):
        parser.error(
            "--servers x --agent-slots must be >= the largest concurrency, else WHOOSH "
            "queues tasks that the direct calls run at once"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve-double"]:
        return serve_double(argv[1:])
    args = parse_args(argv)
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-llm-"))
    log(
        f"LLM overhead benchmark: C={args.concurrency}, tasks {args.tasks}, {args.servers} "
        f"servers, {args.tokens} tokens at {args.tokens_per_s:g}/s after {args.ttft_ms:g} ms, "
        f"store {args.store}, {os.cpu_count()} CPUs; logs in {workdir}"
    )
    load_before = load_before_run()
    phases: list[dict[str, Any]] = []
    error = failure_of(lambda: run_benchmark(args, workdir, phases))
    if phases:
        print_tables(phases)
    report = {
        "benchmark": "llm-overhead",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "args": plain_args(args),
        "model": MODEL,
        "machine": machine(load_before),
        "phases": phases,
        "error": error,
        "logs": str(workdir),
    }
    out = write_report(args.output, "llm-overhead", report)
    print(f"\nJSON: {out}\nservice logs: {workdir}")
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
