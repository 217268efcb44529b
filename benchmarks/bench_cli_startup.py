"""How long `whoosh` takes to start: `whoosh --help` and `whoosh status` (goal: <= 300 ms
each on an idle machine), against a bare `python -c pass` and against importing every
command module up front (what `whoosh` did before its imports were made lazy), measured
in the same run and alternated so that load on the machine hits every side alike.

`whoosh status` asks a real gateway: the script starts a private `whoosh up` (temp data
dir, free ports) and stops it at the end. It is measured beside what it did before it got
its own stdlib-only request (httpx + the query models through `open_fleet`). `--importtime`
also prints the slowest imports of `whoosh status` (`python -X importtime`).

Wall time and CPU time (user + system of the child) are both printed: on a loaded machine
the wall time mostly measures the queue for a core, the CPU time what the command costs.
The children run with bytecode caches allowed (PYTHONDONTWRITEBYTECODE unset), as a
user's install has them; without .pyc files every start compiles the sources again
(about 1 s more here).

    .venv/bin/python benchmarks/bench_cli_startup.py             # 15 rounds
    .venv/bin/python benchmarks/bench_cli_startup.py --rounds 5 --importtime
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

EAGER = (
    "import whoosh_cli.agent_commands, whoosh_cli.alerts_command, whoosh_cli.key_commands, "
    "whoosh_cli.status_command, whoosh_cli.task_commands, whoosh_cli.up_command, "
    "whoosh_cli.replay_command, whoosh_cli.fleet_gateway, whoosh_cli.fleet_bus"
)
CONFIG = """\
cluster:
  name: "bench-startup"
agents:
  echo:
    type: cli
    command: ["cat"]
"""
GOAL_MS = 300.0
STATUS_BEFORE = (  # what `whoosh status` did before quick_gateway: httpx and FleetStats
    "import asyncio, sys\n"
    "from whoosh_cli.__main__ import build_parser\n"
    "from whoosh_cli.context import load_context\n"
    "from whoosh_cli.fleet import open_fleet\n"
    "async def main():\n"
    "    async with open_fleet(load_context(build_parser().parse_args(['status']))) as f:\n"
    "        print((await f.stats()).model_dump_json())\n"
    "asyncio.run(main())\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_whoosh(root: Path) -> Iterator[dict[str, str]]:
    """A private `whoosh up`; yields the environment that reaches it."""
    (root / "whoosh.yaml").write_text(CONFIG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WHOOSH") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        WHOOSH_CONFIG=str(root / "whoosh.yaml"),
        WHOOSH_DATA_DIR=str(root / "data"),
        WHOOSH_CLI_CONFIG=str(root / "cli.yaml"),
        WHOOSH__NATS__PORT=str(free_port()),
        WHOOSH__GATEWAY__PORT=str(free_port()),
    )
    log = (root / "up.out").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "whoosh_cli", "up"], env=env, cwd=root, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while b"try: whoosh task submit" not in (root / "up.out").read_bytes():
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"whoosh up did not start:\n{(root / 'up.out').read_text()}")
            time.sleep(0.2)
        yield env
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took, cpu


def slowest_imports(env: dict[str, str], cwd: Path, count: int = 8) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "whoosh_cli", "status"],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top_level = [r for r in rows if not r[1].startswith("  ")]
    return sorted(top_level, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    python = sys.executable
    sides = {
        "python -c pass (floor)": [python, "-c", "pass"],
        "import every command (before)": [python, "-c", EAGER],
        "whoosh --help": [python, "-m", "whoosh_cli", "--help"],
        "whoosh status": [python, "-m", "whoosh_cli", "status"],
        "status via httpx + models (before)": [python, "-c", STATUS_BEFORE],
    }
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp, running_whoosh(Path(tmp)) as env:
        cwd = Path(tmp)
        for argv in sides.values():  # warm the file cache once
            timed(argv, env, cwd)
        times: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for name, argv in sides.items():
                wall, cpu = timed(argv, env, cwd)
                times[name].append(wall)
                cpus[name].append(cpu)
        load = f"load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        print(f"\n{args.rounds} rounds, {os.cpu_count()} CPUs, {load}\n")
        print("| command | wall median ms | wall p90 ms | wall min ms | CPU median ms | goal |")
        print("|---|---|---|---|---|---|")
        for name, values in times.items():
            ordered = sorted(values)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            goal = ""
            if name.startswith("whoosh"):
                goal = "ok" if statistics.median(values) * 1000 <= GOAL_MS else "MISSED"
            print(
                f"| {name} | {statistics.median(values) * 1000:.0f} | {p90 * 1000:.0f} "
                f"| {ordered[0] * 1000:.0f} | {statistics.median(cpus[name]) * 1000:.0f} "
                f"| {goal} |"
            )
        if args.importtime:
            print("\nslowest top-level imports of `whoosh status` (cumulative µs):")
            for micros, module in slowest_imports(env, cwd):
                print(f"  {micros:>8}  {module.strip()}")


if __name__ == "__main__":
    main()
