"""`whoosh up`: start WHOOSH on this machine and keep it running until Ctrl-C.

Order matters and is the whole point of this module: lock the data dir, clear
what a killed `up` left behind, check the NATS port before starting anything,
then NATS, the coordinator (wait until it answers), the executors and the monitor,
the agents of whoosh.yaml, the gateway (wait until it is ready) and the first admin
key, and finally supervise. Shutdown runs the same list backwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from whoosh_shared.contract.nats_credentials import TOKEN_FILE_NAME
from whoosh_shared.runtime import nats_auth
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.store import StoreUrlError, describe_store, store_env

from whoosh_cli.agent_sync import SyncOutcome, sync_agent
from whoosh_cli.bus_session import close_bus, connect_bus
from whoosh_cli.child_process import ChildSpec, log_tail
from whoosh_cli.child_registry import ChildRegistry, stop_stale_children
from whoosh_cli.context import CliContext
from whoosh_cli.data_dir_lock import DataDirLock
from whoosh_cli.embedded_nats import (
    choose_port,
    client_url,
    nats_child_spec,
    wait_until_listening,
)
from whoosh_cli.endpoints import remove_endpoints, write_endpoints
from whoosh_cli.errors import EXIT_OK, EXIT_USAGE, CliError, UnreachableError
from whoosh_cli.first_admin_key import FirstKey, ensure_admin_key
from whoosh_cli.gateway_child import gateway_spec, wait_for_gateway
from whoosh_cli.monitor_child import monitor_spec
from whoosh_cli.output import notice, print_line
from whoosh_cli.supervisor import StartWait, Supervisor

NATS_START_TIMEOUT_S = 15.0
TOKEN_FILE_ENV = "WHOOSH__NATS__TOKEN_FILE"
COORDINATOR_READY_TIMEOUT_S = 60.0  # an upper bound: it replays its store first, and a
# loaded machine starts Python services slowly (a slow start is said: StartWait)
COORDINATOR = "coordinator"
EXECUTOR = "executor-cli"
LLM_EXECUTOR = "executor-ollama"
EXECUTOR_MODULES = {EXECUTOR: "whoosh_executor_cli", LLM_EXECUTOR: "whoosh_executor_ollama"}


@dataclass(frozen=True)
class Started:
    """What the banner reports once everything answers."""

    nats_url: str
    embedded_nats: bool
    agents: list[SyncOutcome]
    metrics_url: str = ""
    gateway_url: str | None = None
    admin_key: FirstKey | None = None


class ShutdownSignal:
    """SIGINT/SIGTERM set `stop`, and cancel start-up if it is still in progress."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._startup: asyncio.Task[Started] | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def guard(self, task: asyncio.Task[Started]) -> None:
        self._startup = task
        if self.stop.is_set():  # the signal came while we were still clearing stale state
            task.cancel()

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            notice(f"whoosh: {sig.name} received, shutting down")
        self.stop.set()
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()


def run_up(ctx: CliContext) -> int:
    """Entry point of `whoosh up`; returns the exit code."""
    return asyncio.run(_up(ctx))


async def _up(ctx: CliContext) -> int:
    shutdown = ShutdownSignal()
    shutdown.install()
    data_dir = ctx.data_dir
    _check_store_url(ctx.config.store_url())
    with DataDirLock(data_dir):
        registry = ChildRegistry(data_dir)
        stale = stop_stale_children(registry)
        if stale:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in stale)
            notice(f"whoosh: stopped processes left by an earlier `whoosh up`: {names}")
        supervisor = Supervisor(registry)
        try:
            return await _run(ctx, supervisor, shutdown)
        finally:
            supervisor.stop_all()
            remove_endpoints(data_dir)


def _check_store_url(url: str) -> None:
    """A store URL the coordinator cannot parse is a config error: say so before starting."""
    try:
        store_env(url)
    except StoreUrlError as exc:
        hint = "set store.url in whoosh.yaml or WHOOSH_STORE_URL"
        raise CliError(f"{exc} ({hint})", EXIT_USAGE) from None


async def _run(ctx: CliContext, supervisor: Supervisor, shutdown: ShutdownSignal) -> int:
    startup = asyncio.create_task(_start_services(ctx, supervisor))
    shutdown.guard(startup)
    try:
        started = await startup
    except asyncio.CancelledError:
        if shutdown.stop.is_set():
            return EXIT_OK  # Ctrl-C while starting: stop what started, cleanly
        raise
    _print_banner(ctx, started)
    await supervisor.watch(shutdown.stop)
    return EXIT_OK


async def _start_services(ctx: CliContext, supervisor: Supervisor) -> Started:
    embedded = not (ctx.nats_override or ctx.config.nats.url)
    if embedded:
        nats_url = await _start_embedded_nats(ctx, supervisor)
    else:
        nats_url = await _check_external_nats(ctx.nats_override or str(ctx.config.nats.url))
    write_endpoints(ctx.data_dir, nats_url)
    supervisor.start(_coordinator_spec(ctx, nats_url))
    for name in EXECUTOR_MODULES:  # both run even with no agent of their type yet: agents
        supervisor.start(_executor_spec(ctx, nats_url, name))  # can be added at run time
    monitor, metrics_url = monitor_spec(ctx, nats_url, _config_args(ctx))
    supervisor.start(monitor)
    bus = await connect_bus(nats_url, "whoosh-up")
    try:
        await _wait_for_coordinator(bus, supervisor, ctx.data_dir)
        outcomes = [await sync_agent(bus, spec) for spec in ctx.config.agents.values()]
        gateway_url, admin_key = await _start_gateway(ctx, supervisor, bus, nats_url, metrics_url)
    finally:
        await close_bus(bus)
    write_endpoints(ctx.data_dir, nats_url, gateway_url)
    return Started(nats_url, embedded, outcomes, metrics_url, gateway_url, admin_key)


async def _start_gateway(
    ctx: CliContext, supervisor: Supervisor, bus: Bus, nats_url: str, metrics_url: str
) -> tuple[str | None, FirstKey | None]:
    """The gateway last (it needs a coordinator to be ready), then the first admin key.
    It proxies the monitor's `metrics_url` as its own /metrics."""
    settings = ctx.config.gateway
    if not settings.enabled:
        return None, None
    spec, url = gateway_spec(ctx, nats_url, _config_args(ctx), metrics_url)
    supervisor.start(spec)
    await wait_for_gateway(url, supervisor, spec.log_path)
    if settings.insecure_no_auth:
        return url, None
    return url, await ensure_admin_key(bus, ctx.data_dir, os.environ)


async def _start_embedded_nats(ctx: CliContext, supervisor: Supervisor) -> str:
    """Check the port first (nothing has started yet), then run nats-server on it."""
    host = ctx.config.nats.host
    port = choose_port(host, ctx.config.nats.port)
    spec = nats_child_spec(host, port, ctx.data_dir, ctx.config.nats)
    if not ctx.config.nats.has_credential:  # the generated token: for `up` and its children
        os.environ[TOKEN_FILE_ENV] = str(ctx.data_dir / TOKEN_FILE_NAME)
    nats_auth.configure(nats_auth.for_config(ctx.config))
    supervisor.start(spec)
    listening = await wait_until_listening(
        host, port, NATS_START_TIMEOUT_S, alive=lambda: supervisor.is_running("nats")
    )
    if not listening:
        raise CliError(
            f"nats-server did not start on {host}:{port}; its log ({spec.log_path}) ends with:\n"
            f"{log_tail(spec.log_path)}"
        )
    return client_url(host, port)


async def _check_external_nats(url: str) -> str:
    """A configured NATS must answer before we start services that would just retry."""
    try:
        bus = await connect_bus(url, "whoosh-up")
    except UnreachableError:
        raise CliError(
            f"cannot reach the configured NATS server at {url}; start it, or unset nats.url "
            "(and WHOOSH_NATS_URL) to run the bundled one"
        ) from None
    await close_bus(bus)
    return url


def _config_args(ctx: CliContext) -> list[str]:
    return ["--config", str(ctx.config_path)] if ctx.config_path else []


def _coordinator_spec(ctx: CliContext, nats_url: str) -> ChildSpec:
    argv = [
        sys.executable,
        "-m",
        "whoosh_coordinator",
        "serve",
        "--nats",
        nats_url,
        *_config_args(ctx),
    ]
    # The store URL (it may carry a password) in the environment, not argv: every local
    # user can read a process's argv.
    return ChildSpec(COORDINATOR, argv, ctx.data_dir / "logs" / f"{COORDINATOR}.log",
                     env={"WHOOSH_STORE_URL": ctx.config.store_url()})  # fmt: skip


def _executor_spec(ctx: CliContext, nats_url: str, name: str) -> ChildSpec:
    module = EXECUTOR_MODULES[name]
    argv = [sys.executable, "-m", module, "--nats", nats_url, *_config_args(ctx)]
    return ChildSpec(name, argv, ctx.data_dir / "logs" / f"{name}.log")


async def _wait_for_coordinator(bus: Bus, supervisor: Supervisor, data_dir: Path) -> None:
    """Poll GetStats until the coordinator answers, or fail with the tail of its log."""
    log = data_dir / "logs" / f"{COORDINATOR}.log"
    wait = StartWait(supervisor, COORDINATOR, log, COORDINATOR_READY_TIMEOUT_S, ready="answer")
    while True:
        wait.still_running()
        if await bus.coordinator_answers():
            return
        wait.not_ready_yet()
        await asyncio.sleep(0.2)


def _print_gateway(ctx: CliContext, started: Started) -> None:
    if started.gateway_url is None:
        print_line("  gateway   off (gateway.enabled: false); commands use NATS")
        return
    print_line(f"  gateway   {started.gateway_url} (docs {started.gateway_url}/docs)")
    if ctx.config.gateway.mcp.enabled:
        print_line(f"  mcp       {started.gateway_url}/mcp (Streamable HTTP, same API keys)")
    if ctx.config.gateway.insecure_no_auth:
        print_line("  auth      DISABLED (gateway.insecure_no_auth): every caller is admin;")
        print_line("            for local development only")
        return
    if started.admin_key is not None:
        print_line(f"  auth      API keys; {started.admin_key.note}")
        if started.admin_key.shown:
            print_line(f"  admin key {started.admin_key.shown}")
            print_line("            shown once: keep it (other machines: WHOOSH_API_KEY=...)")


def _print_banner(ctx: CliContext, started: Started) -> None:
    config, data_dir = ctx.config, ctx.data_dir
    how = "bundled nats-server" if started.embedded_nats else "existing server"
    print_line(f"WHOOSH is up: {config.cluster.name}")
    print_line(f"  NATS      {started.nats_url} ({how})")
    print_line(f"  store     {describe_store(config.store_url())}")
    print_line(f"  data dir  {data_dir}")
    print_line(f"  logs      {data_dir / 'logs'}")
    print_line(f"  metrics   {started.metrics_url} (whoosh alerts: what fires)")
    _print_gateway(ctx, started)
    if not started.agents:
        print_line("  agents    none yet (add one: whoosh agent add NAME --command CMD)")
    for index, outcome in enumerate(started.agents):
        label = "agents" if index == 0 else ""
        print_line(f"  {label:<9} {outcome.describe()}")
    print_line("try: whoosh task submit 'hello' --wait")
    print_line("(Ctrl-C stops WHOOSH)")
    for outcome in started.agents:
        if not outcome.ok:
            notice(f"whoosh: warning: agent {outcome.describe()}")
