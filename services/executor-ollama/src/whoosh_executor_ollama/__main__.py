"""`python -m whoosh_executor_ollama`: run an executor for LLM agents until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

from whoosh_shared.runtime import service_main

from whoosh_executor_ollama.service import ExecutorService

log = logging.getLogger("whoosh_executor_ollama")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_main.executor_parser(
        "whoosh-executor-ollama",
        "Run WHOOSH tasks for LLM agents (Ollama and OpenAI-compatible servers).",
        ExecutorService.id_prefix,
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return service_main.run_service(
        "executor-ollama",
        args.config,
        lambda config: ExecutorService.from_config(config, args.nats, args.executor_id),
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
