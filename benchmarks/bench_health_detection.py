"""How fast a dead executor or a dead LLM server leaves rotation, and comes back.

The issue's target: with default settings, out of rotation within 5 s
(`monitoring.health_check_interval`). The tests check the behaviour with slack for a
loaded CI machine; this measures the time itself, on loopback:

1. a private nats-server, a coordinator (SQLite in a temp dir), one CLI executor, one
   LLM executor, the monitor, all with default monitoring settings;
2. a CLI agent and an Ollama agent whose "server" is `python -m http.server` (it answers
   the monitor's `GET /api/version` with a 404, which counts as alive);
3. each round: kill -9 the CLI executor and time the AgentHealthChanged(healthy=false)
   event, start a new one and time the healthy event; then the same with the server.

    .venv/bin/python benchmarks/bench_health_detection.py [--rounds 5] [--output DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_support import (
    REPO,
    BenchError,
    Proc,
    install_signal_handlers,
    log,
    summarize,
    wait_for_coordinator,
)
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.contract.config import MonitoringSettings
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.runtime.bus import Bus

TARGET_S = MonitoringSettings().health_check_interval
ENV = {"WHOOSH_CONFIG": os.devnull, "WHOOSH_LOG_LEVEL": "WARNING"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Health:
    """AgentHealthChanged events as they are relayed, by agent."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, str, bool]] = []
        self.names: dict[str, str] = {}

    async def on_event(self, msg: Any) -> None:
        envelope = EventEnvelope.model_validate_json(msg.data)
        name = self.names.get(str(envelope.aggregate_id), "?")
        self.changes.append((time.monotonic(), name, bool(envelope.data["healthy"])))

    async def wait(self, agent: str, healthy: bool, since: float, limit_s: float) -> float:
        deadline = since + limit_s
        while time.monotonic() < deadline:
            for at, name, state in self.changes:
                if at >= since and name == agent and state is healthy:
                    return at - since
            await asyncio.sleep(0.01)
        raise BenchError(f"agent {agent} not {'healthy' if healthy else 'unhealthy'} in time")


async def main(rounds: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    nats_url = f"nats://127.0.0.1:{port}"
    python = sys.executable
    nats_bin = str(Path(python).parent / "nats-server")
    Proc(
        "nats", [nats_bin, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(workdir)], workdir
    ).start()
    await asyncio.sleep(0.5)
    store = f"sqlite:///{workdir / 'events.sqlite'}"
    Proc(
        "coordinator",
        [python, "-m", "whoosh_coordinator", "serve", "--nats", nats_url, "--store", store],
        workdir,
        ENV,
    ).start()
    bus = Bus(nats_url, "bench-health")
    await bus.connect()
    await wait_for_coordinator(bus)
    server_port = free_port()

    def start_server() -> Proc:
        argv = [python, "-m", "http.server", str(server_port), "--bind", "127.0.0.1"]
        return Proc(f"server-{time.monotonic_ns()}", argv, workdir, cwd=workdir).start()

    def start_cli() -> Proc:
        argv = [python, "-m", "whoosh_executor_cli", "--nats", nats_url]
        return Proc(f"executor-cli-{time.monotonic_ns()}", argv, workdir, ENV).start()

    server = start_server()
    await asyncio.sleep(0.5)
    health = Health()
    for spec in (
        AgentSpec(name="shell", command=["cat"]),
        AgentSpec(
            name="llm", type=AgentType.OLLAMA, endpoint=f"http://127.0.0.1:{server_port}", model="m"
        ),
    ):
        reply = await bus.send(RegisterAgent(spec=spec))
        health.names[reply.ids["agent_id"]] = spec.name
    await bus.nc.subscribe(
        subjects.events_of_type("agent", "AgentHealthChanged"), cb=health.on_event
    )
    cli = start_cli()
    Proc(
        "executor-ollama",
        [python, "-m", "whoosh_executor_ollama", "--nats", nats_url],
        workdir,
        ENV,
    ).start()
    monitor_env = {**ENV, "WHOOSH__MONITORING__METRICS_PORT": "0"}
    Proc(
        "monitor", [python, "-m", "whoosh_monitor", "--nats", nats_url], workdir, monitor_env
    ).start()
    await asyncio.sleep(8)  # executors heartbeating, the monitor past its first window

    results: dict[str, list[float]] = {
        k: [] for k in ("executor_down", "executor_back", "server_down", "server_back")
    }
    limit = 10 * TARGET_S
    for index in range(rounds):
        killed = time.monotonic()
        cli.proc.kill()  # type: ignore[union-attr]
        results["executor_down"].append(await health.wait("shell", False, killed, limit))
        started = time.monotonic()
        cli = start_cli()
        results["executor_back"].append(await health.wait("shell", True, started, limit))
        killed = time.monotonic()
        server.proc.kill()  # type: ignore[union-attr]
        results["server_down"].append(await health.wait("llm", False, killed, limit))
        started = time.monotonic()
        server = start_server()
        results["server_back"].append(await health.wait("llm", True, started, limit))
        log(
            f"round {index + 1}: executor out after {results['executor_down'][-1]:.2f}s, "
            f"back after {results['executor_back'][-1]:.2f}s; server out after "
            f"{results['server_down'][-1]:.2f}s, back after {results['server_back'][-1]:.2f}s"
        )
        await asyncio.sleep(1)
    await bus.close()
    return {
        "target_s": TARGET_S,
        "rounds": rounds,
        **{key: summarize(values) for key, values in results.items()},
    }


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    install_signal_handlers()
    with tempfile.TemporaryDirectory(prefix="whoosh-bench-health-") as tmp:
        try:
            report = asyncio.run(main(args.rounds, Path(tmp)))
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            Proc.stop_all()
    print(json.dumps(report, indent=2))
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "health_detection.json").write_text(json.dumps(report, indent=2) + "\n")
    worst = max(report["executor_down"]["max_ms"], report["server_down"]["max_ms"]) / 1000
    verdict = "within" if worst <= TARGET_S else "OVER"
    log(f"worst detection {worst:.2f}s: {verdict} the {TARGET_S:g}s target")
    return 0


if __name__ == "__main__":
    sys.exit(run())
