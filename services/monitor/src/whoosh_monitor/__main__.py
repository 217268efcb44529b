"""`python -m whoosh_monitor`: run the monitor until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

from whoosh_shared.runtime import service_main

from whoosh_monitor.metrics_server import MetricsPortError
from whoosh_monitor.service import MonitorService

log = logging.getLogger("whoosh_monitor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_main.service_parser(
        "whoosh-monitor",
        "Turn executor heartbeats into agent health, serve Prometheus metrics and "
        "evaluate alert rules.",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return service_main.run_service(
        "monitor",
        args.config,
        lambda config: MonitorService(config, nats_url=args.nats or config.nats.client_url()),
        log=log,
        fatal=(MetricsPortError,),
    )


if __name__ == "__main__":
    sys.exit(main())
