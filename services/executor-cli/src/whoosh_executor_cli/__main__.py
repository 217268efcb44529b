"""`python -m whoosh_executor_cli`: run an executor for CLI agents until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

from whoosh_shared.runtime import service_main

from whoosh_executor_cli.service import ExecutorService

log = logging.getLogger("whoosh_executor_cli")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_main.executor_parser(
        "whoosh-executor-cli",
        "Run WHOOSH tasks for CLI agents: as local commands, or over SSH on the agent's host.",
        ExecutorService.id_prefix,
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # asyncssh logs every channel (with its whole command) at INFO: keep its warnings only.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return service_main.run_service(
        "executor-cli",
        args.config,
        lambda config: ExecutorService.from_config(config, args.nats, args.executor_id),
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
