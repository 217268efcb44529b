"""How `whoosh up` runs the monitor: on the configured metrics port, or on a free one when
that is taken (by another `whoosh up`, or anything else): monitoring must not keep
WHOOSH from starting. The banner shows the URL in use."""

from __future__ import annotations

import sys

from whoosh_cli.child_process import ChildSpec
from whoosh_cli.context import CliContext
from whoosh_cli.output import notice
from whoosh_cli.ports import free_port, port_free

MONITOR = "monitor"


def monitor_spec(ctx: CliContext, nats_url: str, config_args: list[str]) -> tuple[ChildSpec, str]:
    """The monitor's child spec and its /metrics URL."""
    settings = ctx.config.monitoring
    host, port = settings.metrics_host, settings.metrics_port
    if port == 0 or not port_free(host, port):
        chosen = free_port(host)
        if port:
            notice(f"whoosh: metrics port {port} on {host} is in use; the monitor uses {chosen}")
        port = chosen
    argv = [sys.executable, "-m", "whoosh_monitor", "--nats", nats_url, *config_args]
    env = {"WHOOSH__MONITORING__METRICS_PORT": str(port)}
    spec = ChildSpec(MONITOR, argv, ctx.data_dir / "logs" / f"{MONITOR}.log", env=env)
    shown = f"[{host}]" if ":" in host else host
    return spec, f"http://{shown}:{port}/metrics"
