"""What every service's `python -m` entry point does the same way: the common options,
logging, reading the configuration, and running until SIGTERM/SIGINT.

The exit codes are what a supervisor (`whoosh up`, compose, systemd) acts on: 0 after an
orderly stop; 2 for a configuration that cannot be used (restarting will not help, the
file must be fixed); 1 for a bus that cannot be reached, or another start-up failure the
service names, said in one log line rather than a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from whoosh_shared.contract.config import ConfigError, WhooshConfig, load_config
from whoosh_shared.runtime import event_loop, nats_auth
from whoosh_shared.runtime.bus import BusError
from whoosh_shared.runtime.logs import setup_logging

CONFIG_ERROR_EXIT = 2
START_FAILURE_EXIT = 1


class Service(Protocol):
    """A long-running service: `run` until `request_stop` asks for an orderly stop."""

    def request_stop(self) -> None: ...

    async def run(self) -> None: ...


ServiceT = TypeVar("ServiceT", bound=Service)


def service_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every service takes: where its configuration is, and the bus."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--config", help="whoosh.yaml to read (default: $WHOOSH_CONFIG, else ./whoosh.yaml)"
    )
    parser.add_argument("--nats", help="NATS URL (overrides the configuration)")
    return parser


def executor_parser(prog: str, description: str, id_prefix: str) -> argparse.ArgumentParser:
    """An executor's options: a service's, and the name it goes by in task events."""
    parser = service_parser(prog, description)
    parser.add_argument(
        "--executor-id",
        help=f"name of this executor in task events (default: {id_prefix}-HOST-PID)",
    )
    return parser


async def serve(service: Service) -> None:
    """Run the service; SIGTERM and SIGINT ask it to stop in order (a second one, to stop
    waiting)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    await service.run()


def run_service(
    name: str,
    config_path: str | None,
    build: Callable[[WhooshConfig], ServiceT],
    *,
    log: logging.Logger,
    serve: Callable[[ServiceT], Coroutine[Any, Any, None]] = serve,
    fatal: tuple[type[Exception], ...] = (),
) -> int:
    """Log as `name`, read the configuration, build the service from it and serve it until
    it stops; the process's exit code. `fatal` names the service's own start-up errors
    besides the bus's, reported on its `log`."""
    setup_logging(name)
    try:
        config = load_config(config_path)
        nats_auth.configure(nats_auth.for_config(config))
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return CONFIG_ERROR_EXIT
    service = build(config)
    try:
        event_loop.run(serve(service))
    except (BusError, *fatal) as exc:
        log.error("%s", exc)
        return START_FAILURE_EXIT
    return 0
