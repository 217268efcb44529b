#!/usr/bin/env python
"""What WHOOSH adds to a short remote command: `true` over SSH through WHOOSH, against a
bare asyncssh loop over one connection to the same sshd.

    .venv/bin/python benchmarks/bench_ssh_overhead.py [--concurrency 1,10,50] [--tasks 200]

It starts, on loopback, a private OpenSSH sshd (`bench_sshd.py`: throwaway keys, a
MaxSessions that lets one connection carry every channel), a fresh nats-server, a
coordinator (SQLite) and one executor-cli, and registers one remote CLI agent running
`true` on that sshd. For each concurrency C it then runs N short commands each way, C at
a time, the sides alternating in rounds:
- bare: one `asyncssh.connect`, then `conn.run("true")`;
- wrapped: the same connection, running the exact exec string WHOOSH sends (its remote
  wrapper around `true`), which separates the wrapper's cost from the rest of WHOOSH;
- WHOOSH: SubmitTask pinned to the agent, done at its TaskCompleted event.
The table (p50/p95 per task, tasks/s, added ms at p50 and the ratio) is printed and
written as JSON to benchmarks/results/. See benchmarks/README.md.

Not part of the test suite. Every process it starts is stopped at the end, on errors and
on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))  # the test harness: nats-server binary, free ports
sys.path.insert(0, str(HERE))

import asyncssh  # noqa: E402
from bench_sshd import Sshd  # noqa: E402
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
    p50_ms,
    plain_args,
    print_markdown,
    start_nats,
    summarize,
    wait_for_coordinator,
    watched,
    whoosh_env,
    write_report,
)
from harness import free_port  # noqa: E402
from whoosh_executor_cli.remote_process import REMOTE_DEADLINE_MARGIN_S  # noqa: E402
from whoosh_executor_cli.remote_wrapper import run_command  # noqa: E402
from whoosh_shared.contract import subjects  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec, SshSettings  # noqa: E402
from whoosh_shared.contract.commands import RegisterAgent, RejectCode, RetryPolicy, SubmitTask  # noqa: E402
from whoosh_shared.contract.config import ExecutorSettings  # noqa: E402
from whoosh_shared.contract.enums import AgentType  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

AGENT = "bench-ssh"
COMMAND = ["true"]
PROMPT = "noop"  # what WHOOSH writes on the command's stdin (`true` ignores it)
PERCENTILES = (95, 99)
SIDES = ("bare", "wrapped", "whoosh")


# -- the three clients ------------------------------------------------------------------


class BareClient:
    """One command per channel on one asyncssh connection: the least a client must do to
    run a command over SSH, so that the difference to WHOOSH is WHOOSH's path.

    Without stdin it is `conn.run(command)`. With stdin (the wrapped side, which sends
    what WHOOSH sends) it writes the way executor-cli does: a command that does not read
    stdin may end, and its channel close, before the write, which is not an error."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, command: str, stdin: str | None, timeout: float
    ) -> None:
        self.conn, self.command, self.stdin, self.timeout = conn, command, stdin, timeout

    async def run_one(self) -> dict[str, Any]:
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                result = await self._run()
        except (asyncssh.Error, asyncssh.ProcessError, OSError, TimeoutError) as exc:
            raise BenchError(f"ssh run failed: {exc!r}") from None
        done = time.perf_counter()
        if result.exit_status != 0:
            raise BenchError(
                f"ssh run exited with {result.exit_status} / {result.exit_signal}: "
                f"{str(result.stderr or '')[-300:]!r}"
            )
        return {"total_s": done - sent}

    async def _run(self) -> asyncssh.SSHCompletedProcess:
        if self.stdin is None:
            return await self.conn.run(self.command, check=False)
        process = await self.conn.create_process(self.command)
        try:
            process.stdin.write(self.stdin)
            process.stdin.write_eof()
        except OSError:
            pass  # the command ended before reading: its business, as in RemoteProcess
        return await process.wait(check=False)


class WhooshClient:
    """Submits `true` tasks pinned to the SSH agent and waits for their TaskCompleted.

    The subscriptions are made before anything is submitted (wildcards: a task's id is
    only known from the submit reply, which its events may in principle beat)."""

    def __init__(self, bus: Bus, task_timeout: float) -> None:
        self.bus, self.task_timeout = bus, task_timeout
        self.started_wall: dict[str, float] = {}  # TaskStarted's own timestamp, epoch s
        self.ends = TaskEnds(bus)

    async def start(self) -> None:
        nc = self.bus.nc
        await nc.subscribe(subjects.events_of_type("task", "TaskStarted"), cb=self._on_started)
        await self.ends.subscribe()
        await nc.flush()

    async def _on_started(self, msg: Any) -> None:
        envelope = json.loads(msg.data)
        self.started_wall[envelope["aggregate_id"]] = event_time(envelope)

    async def run_one(self, timeout: float | None = None) -> dict[str, Any]:
        """One task, submit to TaskCompleted: its total, and where the time went.

        `timeout` (default: the task's own timeout plus 5 s) bounds the wait for its end."""
        command = SubmitTask(
            prompt=PROMPT,
            agent=AGENT,
            timeout_s=self.task_timeout,
            retry=RetryPolicy(max_attempts=1),
            actor="bench",
        )
        run = await self.ends.run(command, timeout or self.task_timeout + 5)
        task_id, envelope = run.task_id, run.envelope
        data = envelope.get("data", {})
        if envelope["type"] != "TaskCompleted" or data.get("exit_code") != 0:
            raise BenchError(
                f"task {task_id} ended with {envelope['type']} (exit {data.get('exit_code')}): "
                f"{data.get('reason')!r} (output {str(data.get('output', ''))[-300:]!r})"
            )
        total = run.done - run.sent
        started = self.started_wall.pop(task_id, None)
        run_s = float((data.get("usage") or {}).get("duration_s", 0.0))
        to_started = None if started is None else started - run.sent_wall
        return {
            "total_s": total,
            "to_started_s": to_started,
            "run_s": run_s,
            "after_run_s": None if to_started is None else total - to_started - run_s,
        }


def agent_spec(sshd: Sshd, args: argparse.Namespace) -> AgentSpec:
    """The remote CLI agent: `true` on the private sshd, reached with its key and
    known_hosts, on a pool sized by --ssh-channels / --ssh-connections."""
    return AgentSpec(
        name=AGENT,
        type=AgentType.CLI,
        command=COMMAND,
        host=sshd.host,
        ssh=SshSettings(
            user=sshd.user,
            port=sshd.port,
            identity_file=str(sshd.client_key),
            known_hosts=str(sshd.known_hosts),
            channels_per_connection=args.ssh_channels,
            max_connections=args.ssh_connections,
        ),
        max_concurrent=args.agent_slots,
    )


def wrapped_command(task_timeout: float) -> str:
    """The exec string executor-cli sends for this agent's task (same deadline and grace)."""
    return run_command(
        COMMAND,
        deadline_s=task_timeout + REMOTE_DEADLINE_MARGIN_S,
        grace_s=ExecutorSettings().kill_grace_s,
    )


# -- the phases -------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace,
    nats_url: str,
    sshd: Sshd,
    cpu: CpuMeter,
    phases: list[dict[str, Any]],
) -> None:
    """Every concurrency: warm-up, then alternating rounds of the sides. Each phase is
    appended to `phases` as it ends, so a later failure keeps the earlier figures."""
    bus = Bus(nats_url, "whoosh-bench-ssh")
    await bus.connect()
    conn: asyncssh.SSHClientConnection | None = None
    try:
        log("waiting for the coordinator")
        await wait_for_coordinator(bus)
        reply = await bus.send(RegisterAgent(spec=agent_spec(sshd, args), actor="bench"))
        if not reply.accepted and reply.code != RejectCode.DUPLICATE.value:
            raise BenchError(f"RegisterAgent rejected: {reply.code}: {reply.reason}")
        whoosh = WhooshClient(bus, args.task_timeout)
        await whoosh.start()
        log("first task (also waits for the executor's work consumer and SSH connection)")
        await whoosh.run_one(timeout=90)

        # The bare side: the same key, known_hosts and server; no ssh config, no agent.
        conn = await asyncio.wait_for(
            asyncssh.connect(
                sshd.host,
                port=sshd.port,
                username=sshd.user,
                client_keys=[str(sshd.client_key)],
                known_hosts=str(sshd.known_hosts),
                agent_path=None,
                config=None,
            ),
            30,
        )
        clients: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "bare": BareClient(conn, " ".join(COMMAND), None, args.task_timeout).run_one,
            "wrapped": BareClient(
                conn, wrapped_command(args.task_timeout), PROMPT, args.task_timeout
            ).run_one,
            "whoosh": whoosh.run_one,
        }
        if args.no_wrapped:
            del clients["wrapped"]
        await clients["bare"]()
        for concurrency in args.concurrency:
            phases.append(await measure_phase(args, concurrency, clients, cpu))
    finally:
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        with contextlib.suppress(Exception):
            await bus.close()


async def measure_phase(
    args: argparse.Namespace,
    concurrency: int,
    sides: dict[str, Callable[[], Awaitable[dict[str, Any]]]],
    cpu: CpuMeter,
) -> dict[str, Any]:
    """One concurrency: the sides alternate in `args.rounds` rounds (`alternate_sides`)."""
    label = f"C={concurrency}"
    tasks = args.tasks
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
            "latency": summarize([r["total_s"] for r in run.results], PERCENTILES),
            **run.figures(),
        }
    runs = side_runs["whoosh"].results
    phase["whoosh"]["breakdown_p50_ms"] = {
        "submit_to_started": p50_ms([r["to_started_s"] for r in runs]),
        "executor_run": p50_ms([r["run_s"] for r in runs]),
        "after_run": p50_ms([r["after_run_s"] for r in runs]),
    }
    bare, whoosh = phase["bare"]["latency"]["p50_ms"], phase["whoosh"]["latency"]["p50_ms"]
    phase["added_p50_ms"] = round(whoosh - bare, 3)
    phase["ratio_p50"] = round(whoosh / bare, 3)
    phase["throughput_ratio"] = round(phase["whoosh"]["per_s"] / phase["bare"]["per_s"], 3)
    if "wrapped" in phase:
        wrapped = phase["wrapped"]["latency"]["p50_ms"]
        phase["added_split_p50_ms"] = {
            "wrapper": round(wrapped - bare, 3),
            "rest_of_whoosh": round(whoosh - wrapped, 3),
        }
    log(
        f"[{label}] p50 bare {bare:.1f} ms, WHOOSH {whoosh:.1f} ms "
        f"(+{phase['added_p50_ms']:.1f} ms, {phase['ratio_p50']:.2f}x); tasks/s bare "
        f"{phase['bare']['per_s']:.0f}, WHOOSH {phase['whoosh']['per_s']:.0f}"
    )
    return phase


# -- the services -------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace, workdir: Path, phases: list[dict[str, Any]]) -> None:
    """Start everything, measure into `phases`, stop everything (also on failure)."""
    try:
        sshd = Sshd(
            workdir / "sshd",
            free_port(),
            args.max_sessions,
            workdir,
            skip_shell_rc=not args.keep_shell_rc,
        ).start()
        rc = "sourced" if args.keep_shell_rc else "skipped (SHLVL=1)"
        log(
            f"sshd on {sshd.host}:{sshd.port} (MaxSessions {args.max_sessions}) as {sshd.user}; "
            f"the login shell's ~/.bashrc {rc}"
        )

        nats, nats_url = start_nats(workdir)
        store_url = f"sqlite:///{workdir / 'events.sqlite'}"
        max_parallel = max(64, 2 * max(args.concurrency), args.agent_slots)
        env = whoosh_env(workdir / "whoosh.yaml", workdir / "data", max_parallel)
        log(f"nats {nats_url}, store {store_url}, executor max_parallel {max_parallel}")
        serve = ["-m", "whoosh_coordinator", "serve", "--nats", nats_url, "--store", store_url]
        coordinator = Proc("coordinator", [sys.executable, *serve], workdir, env).start()
        execute = ["-m", "whoosh_executor_cli", "--nats", nats_url, "--executor-id", "bench"]
        executor = Proc("executor-cli", [sys.executable, *execute], workdir, env).start()
        cpu = CpuMeter(
            {
                "bench client": lambda: cpu_seconds(os.getpid()),
                "sshd (all)": sshd.cpu_seconds,
                "executor-cli": lambda: cpu_seconds(executor.pid),
                "coordinator": lambda: cpu_seconds(coordinator.pid),
                "nats-server": lambda: cpu_seconds(nats.pid),
            }
        )
        procs = [sshd, nats, coordinator, executor]
        main = asyncio.wait_for(measure(args, nats_url, sshd, cpu, phases), args.total_limit)
        try:
            asyncio.run(watched(main, procs))
        except TimeoutError:
            raise BenchError(f"over the total limit of {args.total_limit:g}s") from None
    finally:
        Proc.stop_all()
        drop_run_data(workdir)  # keep the logs only


# -- report -------------------------------------------------------------------------------


def print_tables(phases: list[dict[str, Any]]) -> None:
    """The headline table, the split of the added time, and CPU per task."""

    def pair(stats: dict[str, float]) -> str:
        return f"{stats['p50_ms']:.1f} / {stats['p95_ms']:.1f}"

    rows = [
        (
            "C",
            "bare p50/p95",
            "WHOOSH p50/p95",
            "bare tasks/s",
            "WHOOSH tasks/s",
            "added p50",
            "ratio p50",
        )
    ]
    for p in phases:
        b, w = p["bare"], p["whoosh"]
        rows.append(
            (
                str(p["concurrency"]),
                pair(b["latency"]),
                pair(w["latency"]),
                f"{b['per_s']:.0f}",
                f"{w['per_s']:.0f}",
                f"{p['added_p50_ms']:+.1f}",
                f"{p['ratio_p50']:.2f}x",
            )
        )
    print("\nTimes in ms per task; added and ratio: WHOOSH p50 against bare asyncssh p50")
    print_markdown(rows)

    rows = [
        (
            "C",
            "wrapped p50/p95",
            "wrapped tasks/s",
            "added by the wrapper",
            "added by the rest",
            "submit -> started",
            "executor run",
            "after the run",
        )
    ]
    for p in phases:
        k = p["whoosh"]["breakdown_p50_ms"]
        wrapped = p.get("wrapped")
        split = p.get("added_split_p50_ms", {})
        rows.append(
            (
                str(p["concurrency"]),
                pair(wrapped["latency"]) if wrapped else "-",
                f"{wrapped['per_s']:.0f}" if wrapped else "-",
                f"{split['wrapper']:+.1f}" if split else "-",
                f"{split['rest_of_whoosh']:+.1f}" if split else "-",
                *(
                    "-" if k[key] is None else f"{k[key]:.1f}"
                    for key in ("submit_to_started", "executor_run", "after_run")
                ),
            )
        )
    print("\nWhere WHOOSH's time goes (p50 ms per task; see README)")
    print_markdown(rows)

    print("\nCPU ms per task (" + " / ".join(s for s in SIDES if s in phases[0]) + ")")
    for p in phases:
        names = p["whoosh"]["cpu_ms_per_task"]
        parts = [
            f"{name} " + "/".join(f"{p[s]['cpu_ms_per_task'][name]:.1f}" for s in SIDES if s in p)
            for name in names
        ]
        print(f"  C={p['concurrency']}: " + ", ".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 10, 50],
        help="commands in flight per phase, comma-separated; default 1,10,50",
    )
    parser.add_argument(
        "--tasks", type=int, default=200, help="commands each way per phase; default 200"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternations of the sides per phase; default 2"
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="warm-up commands each way per phase (at least C)"
    )
    parser.add_argument(
        "--no-wrapped",
        action="store_true",
        help="skip the third side (WHOOSH's wrapper over the bare connection)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=128,
        help="sshd MaxSessions (channels per connection); default 128",
    )
    parser.add_argument(
        "--keep-shell-rc",
        action="store_true",
        help="let the remote login shell source ~/.bashrc (default: skipped, see bench_sshd.py)",
    )
    parser.add_argument(
        "--ssh-channels",
        type=int,
        default=64,
        help="the agent's ssh.channels_per_connection; default 64 (one connection, as the "
        "bare loop; WHOOSH's own default is 8)",
    )
    parser.add_argument(
        "--ssh-connections",
        type=int,
        default=1,
        help="the agent's ssh.max_connections; default 1 (WHOOSH's own default is 4)",
    )
    parser.add_argument(
        "--agent-slots", type=int, default=64, help="the agent's max_concurrent; default 64"
    )
    parser.add_argument(
        "--task-timeout", type=float, default=30.0, help="seconds one task or command may take"
    )
    parser.add_argument(
        "--phase-limit", type=float, default=300.0, help="seconds one side of one round may take"
    )
    parser.add_argument(
        "--total-limit", type=float, default=1800.0, help="seconds the whole measurement may take"
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="folder for the JSON result"
    )
    args = parser.parse_args(argv)
    top = max(args.concurrency, default=0)
    if min(args.concurrency, default=0) < 1 or args.rounds < 1 or args.tasks < 2 * args.rounds:
        parser.error("concurrency and rounds must be >= 1, tasks >= 2 per round")
    if args.agent_slots < top or args.ssh_channels * args.ssh_connections < top:
        parser.error(
            "--agent-slots and --ssh-channels x --ssh-connections must be >= the largest "
            "concurrency, else WHOOSH queues tasks that the bare loop runs at once"
        )
    if args.max_sessions <= max(top, args.ssh_channels):
        parser.error(
            "--max-sessions must exceed the largest concurrency (the bare loop's channels on "
            "its one connection) and --ssh-channels (WHOOSH's, plus room for a kill)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="whoosh-bench-ssh-"))
    log(
        f"SSH overhead benchmark: C={args.concurrency}, {args.tasks} tasks each way, "
        f"WHOOSH pool {args.ssh_connections} x {args.ssh_channels} channels, "
        f"{os.cpu_count()} CPUs; logs in {workdir}"
    )
    load_before = load_before_run()
    phases: list[dict[str, Any]] = []
    error = failure_of(lambda: run_benchmark(args, workdir, phases))
    if phases:
        print_tables(phases)
    report = {
        "benchmark": "ssh-overhead",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "args": plain_args(args),
        "command": COMMAND,
        "wrapped_command": wrapped_command(args.task_timeout),
        "machine": machine(load_before, asyncssh=asyncssh.__version__),
        "phases": phases,
        "error": error,
        "logs": str(workdir),
    }
    out = write_report(args.output, "ssh-overhead", report)
    print(f"\nJSON: {out}\nservice logs: {workdir}")
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
