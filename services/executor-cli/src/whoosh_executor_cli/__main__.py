"""`python -m whoosh_executor_cli`: run an executor for CLI agents until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from whoosh_shared.bus import BusError
from whoosh_shared.config import ConfigError, load_config
from whoosh_shared.logs import setup_logging

from whoosh_executor_cli.local_process import use_pidfd_child_watcher
from whoosh_executor_cli.service import ExecutorService, default_executor_id

log = logging.getLogger("whoosh_executor_cli")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="whoosh-executor-cli",
        description="Run WHOOSH tasks for CLI agents: as local commands, or over SSH on the "
        "agent's host.",
    )
    parser.add_argument(
        "--config", help="whoosh.yaml to read (default: $WHOOSH_CONFIG, else ./whoosh.yaml)"
    )
    parser.add_argument("--nats", help="NATS URL (overrides the configuration)")
    parser.add_argument(
        "--executor-id", help="name of this executor in task events (default: cli-HOST-PID)"
    )
    return parser.parse_args(argv)


async def serve(service: ExecutorService) -> None:
    use_pidfd_child_watcher()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    await service.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("executor-cli")
    # asyncssh logs every channel (with its whole command) at INFO: keep its warnings only.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    service = ExecutorService(
        nats_url=args.nats or config.nats.client_url(),
        settings=config.executor,
        executor_id=args.executor_id or default_executor_id(),
        stream_replicas=config.nats.stream_replicas,
    )
    try:
        asyncio.run(serve(service))
    except BusError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
