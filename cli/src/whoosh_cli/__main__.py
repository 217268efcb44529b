"""`whoosh`: parse the command line, run one command, map failures to exit codes.

This is the only place that catches errors broadly: everything a user can get
wrong ends as one line on stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from whoosh_cli import (
    agent_commands,
    alerts_command,
    collab_commands,
    key_commands,
    status_command,
    task_commands,
)
from whoosh_cli.arguments import build_parser
from whoosh_cli.context import CliContext, load_context
from whoosh_cli.errors import EXIT_INTERRUPTED, CliError
from whoosh_cli.output import error
from whoosh_cli.replay_command import replay
from whoosh_cli.up_command import run_up

AsyncCommand = Callable[[CliContext, argparse.Namespace], Awaitable[int]]

ASYNC_COMMANDS: dict[tuple[str, ...], AsyncCommand] = {
    ("status",): status_command.status,
    ("alerts",): alerts_command.alerts,
    ("agent", "list"): agent_commands.agent_list,
    ("agent", "add"): agent_commands.agent_add,
    ("agent", "enable"): agent_commands.agent_enable,
    ("agent", "disable"): agent_commands.agent_disable,
    ("task", "submit"): task_commands.task_submit,
    ("task", "get"): task_commands.task_get,
    ("task", "list"): task_commands.task_list,
    ("task", "cancel"): task_commands.task_cancel,
    ("task", "events"): task_commands.task_events,
    ("agent", "remove"): agent_commands.agent_remove,
    ("key", "create"): key_commands.key_create,
    ("key", "list"): key_commands.key_list,
    ("key", "revoke"): key_commands.key_revoke,
    **collab_commands.COMMANDS,
}


def command_key(args: argparse.Namespace) -> tuple[str, ...]:
    action = getattr(args, f"{args.group}_action", None)
    return (args.group, action) if action else (args.group,)


def dispatch(args: argparse.Namespace) -> int:
    ctx = load_context(args)
    key = command_key(args)
    if key == ("up",):
        return run_up(ctx)
    if key == ("replay",):
        return replay(ctx, args)
    return asyncio.run(ASYNC_COMMANDS[key](ctx, args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except CliError as exc:
        error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
