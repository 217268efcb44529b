"""How `whoosh up` runs the gateway: on the configured port, or on a free one when that is
taken (the banner and endpoints.json say which), and ready only once /readyz answers."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

from whoosh_cli.child_process import ChildSpec, log_tail
from whoosh_cli.context import CliContext
from whoosh_cli.errors import CliError
from whoosh_cli.output import notice
from whoosh_cli.ports import free_port, port_free
from whoosh_cli.supervisor import Supervisor

GATEWAY = "gateway"
READY_TIMEOUT_S = 30.0


def gateway_spec(ctx: CliContext, nats_url: str, config_args: list[str]) -> tuple[ChildSpec, str]:
    """The gateway's child spec and the URL clients use to reach it."""
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
    spec = ChildSpec(GATEWAY, argv, ctx.data_dir / "logs" / f"{GATEWAY}.log")
    url = settings.model_copy(update={"port": port}).url()
    if settings.public_url is None and host in ("0.0.0.0", "::"):
        url = f"http://127.0.0.1:{port}" if host == "0.0.0.0" else f"http://[::1]:{port}"
    return spec, url


async def wait_for_gateway(url: str, supervisor: Supervisor, log: Path) -> None:
    """Until /readyz says ready, or fail with the tail of the gateway's log."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if not supervisor.is_running(GATEWAY):
                status = supervisor.returncode(GATEWAY)
                raise CliError(
                    f"the gateway exited while starting (status {status}); {log} ends with:\n"
                    f"{log_tail(log)}"
                )
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CliError(
                    f"the gateway did not become ready within {READY_TIMEOUT_S:g}s; {log} ends "
                    f"with:\n{log_tail(log)}"
                )
            await asyncio.sleep(0.1)
