"""How `whoosh up` runs the gateway: on the configured port, or on a free one when that is
taken (the banner and endpoints.json say which), and ready only once /readyz answers.
It serves the metrics of the monitor that `up` started as its own `/metrics`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from whoosh_shared.contract.gateway_settings import GatewaySettings

from whoosh_cli.child_process import ChildSpec
from whoosh_cli.context import CliContext
from whoosh_cli.output import notice
from whoosh_cli.ports import free_port, port_free
from whoosh_cli.supervisor import StartWait, Supervisor

GATEWAY = "gateway"
READY_TIMEOUT_S = 60.0  # an upper bound (a loaded machine starts Python services slowly)
MONITOR_URL_ENV = "WHOOSH__GATEWAY__MONITOR_METRICS_URL"
WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def gateway_spec(
    ctx: CliContext, nats_url: str, config_args: list[str], metrics_url: str | None = None
) -> tuple[ChildSpec, str]:
    """The gateway's child spec and the URL clients use to reach it; `metrics_url` is the
    monitor's, for the gateway's /metrics."""
    settings = ctx.config.gateway
    host, port = settings.host, settings.port
    if port == 0 or not port_free(host, port):
        chosen = free_port(host)
        if port:
            notice(f"whoosh: gateway port {port} on {host} is in use; the gateway uses {chosen}")
        port = chosen
    argv = [
        sys.executable, "-m", "whoosh_gateway", "--nats", nats_url, "--host", host,
        "--port", str(port), *config_args,
    ]  # fmt: skip
    env = monitor_env(settings, metrics_url)
    spec = ChildSpec(GATEWAY, argv, ctx.data_dir / "logs" / f"{GATEWAY}.log", env=env)
    url = settings.model_copy(update={"port": port}).url()
    if settings.public_url is None and host in ("0.0.0.0", "::"):
        url = f"http://127.0.0.1:{port}" if host == "0.0.0.0" else f"http://[::1]:{port}"
    return spec, url


def monitor_env(settings: GatewaySettings, metrics_url: str | None) -> dict[str, str]:
    """Point the gateway at the monitor `up` started, unless the configuration already names
    a monitor (whoosh.yaml or the environment): an explicit choice wins."""
    if metrics_url is None or settings.monitor_metrics_url is not None:
        return {}
    return {MONITOR_URL_ENV: connectable(metrics_url)}


def connectable(url: str) -> str:
    """`url` with a wildcard listen address (0.0.0.0, ::) replaced by loopback: a monitor
    listening everywhere is reached on this machine through loopback."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host not in WILDCARD_TO_LOOPBACK:
        return url
    loopback = WILDCARD_TO_LOOPBACK[host]
    shown = f"[{loopback}]" if ":" in loopback else loopback
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return parts._replace(netloc=netloc).geturl()


async def wait_for_gateway(url: str, supervisor: Supervisor, log: Path) -> None:
    """Until /readyz says ready, or fail with the tail of the gateway's log."""
    wait = StartWait(supervisor, GATEWAY, log, READY_TIMEOUT_S, ready="become ready")
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            wait.still_running()
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            wait.not_ready_yet()
            await asyncio.sleep(0.1)
