"""How `whoosh up` runs the monitor: on the configured metrics port, or on a free one when
that is taken (by another `whoosh up`, or anything else): monitoring must not keep
WHOOSH from starting. The banner shows the URL in use.

`up` binds the port itself and hands the listening socket to the monitor, and to every
restart of it: with a check here and a bind in the monitor, the port could be taken in
between, and a restarted monitor could find it taken for good, fail at each restart and
so stop all of WHOOSH (seen when two installations started together)."""

from __future__ import annotations

import sys

from whoosh_cli.child_process import ChildSpec
from whoosh_cli.context import CliContext
from whoosh_cli.output import notice
from whoosh_cli.ports import listening

MONITOR = "monitor"


def monitor_spec(ctx: CliContext, nats_url: str, config_args: list[str]) -> tuple[ChildSpec, str]:
    """The monitor's child spec and its /metrics URL."""
    settings = ctx.config.monitoring
    host, wanted = settings.metrics_host, settings.metrics_port
    sock = listening(host, wanted)
    port = int(sock.getsockname()[1])
    if wanted and port != wanted:
        notice(f"whoosh: metrics port {wanted} on {host} is in use; the monitor uses {port}")
    argv = [sys.executable, "-m", "whoosh_monitor", "--nats", nats_url, *config_args]
    env = {
        "WHOOSH__MONITORING__METRICS_PORT": str(port),
        "WHOOSH__MONITORING__METRICS_FD": str(sock.fileno()),
    }
    log_path = ctx.data_dir / "logs" / f"{MONITOR}.log"
    spec = ChildSpec(MONITOR, argv, log_path, env=env, inherits=(sock,))
    shown = f"[{host}]" if ":" in host else host
    return spec, f"http://{shown}:{port}/metrics"
