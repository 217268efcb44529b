"""`python -m whoosh_monitor`: run the monitor until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from whoosh_shared.bus import BusError
from whoosh_shared.config import ConfigError, load_config
from whoosh_shared.logs import setup_logging

from whoosh_monitor.metrics_server import MetricsPortError
from whoosh_monitor.service import MonitorService

log = logging.getLogger("whoosh_monitor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="whoosh-monitor",
        description="Turn executor heartbeats into agent health, serve Prometheus metrics and "
        "evaluate alert rules.",
    )
    parser.add_argument(
        "--config", help="whoosh.yaml to read (default: $WHOOSH_CONFIG, else ./whoosh.yaml)"
    )
    parser.add_argument("--nats", help="NATS URL (overrides the configuration)")
    return parser.parse_args(argv)


async def serve(service: MonitorService) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    await service.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("monitor")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    service = MonitorService(config, nats_url=args.nats or config.nats.client_url())
    try:
        asyncio.run(serve(service))
    except (BusError, MetricsPortError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
