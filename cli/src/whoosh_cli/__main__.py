"""`whoosh`: parse the command line, run one command, map failures to exit codes.

This is the only place that catches errors broadly: everything a user can get
wrong ends as one line on stderr and a documented exit code, never a traceback.

Command modules are imported only when their command runs (``COMMANDS`` names them as
strings): importing every one of them (faststream, httpx, the pydantic contract) cost
about 0.7 s before `whoosh --help` could print anything. See
benchmarks/bench_cli_startup.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from whoosh_cli.arguments import build_parser
from whoosh_cli.errors import EXIT_INTERRUPTED, CliError
from whoosh_cli.output import error

if TYPE_CHECKING:
    from whoosh_cli.context import CliContext

AsyncCommand = Callable[["CliContext", argparse.Namespace], Awaitable[int]]

COMMANDS: dict[tuple[str, ...], str] = {
    ("status",): "whoosh_cli.status_command:status",
    ("top",): "whoosh_cli.top_command:top",
    ("alerts",): "whoosh_cli.alerts_command:alerts",
    ("agent", "list"): "whoosh_cli.agent_commands:agent_list",
    ("agent", "add"): "whoosh_cli.agent_commands:agent_add",
    ("agent", "enable"): "whoosh_cli.agent_commands:agent_enable",
    ("agent", "disable"): "whoosh_cli.agent_commands:agent_disable",
    ("task", "submit"): "whoosh_cli.task_commands:task_submit",
    ("task", "get"): "whoosh_cli.task_commands:task_get",
    ("task", "list"): "whoosh_cli.task_commands:task_list",
    ("task", "cancel"): "whoosh_cli.task_commands:task_cancel",
    ("task", "events"): "whoosh_cli.task_commands:task_events",
    ("task", "watch"): "whoosh_cli.task_commands:task_watch",
    ("agent", "remove"): "whoosh_cli.agent_commands:agent_remove",
    ("agent", "weight"): "whoosh_cli.agent_commands:agent_weight",
    ("key", "create"): "whoosh_cli.key_commands:key_create",
    ("key", "list"): "whoosh_cli.key_commands:key_list",
    ("key", "revoke"): "whoosh_cli.key_commands:key_revoke",
    ("workflow", "import"): "whoosh_cli.workflow_commands:workflow_import",
    ("workflow", "create"): "whoosh_cli.workflow_commands:workflow_create",
    ("workflow", "list"): "whoosh_cli.workflow_commands:workflow_list",
    ("workflow", "get"): "whoosh_cli.workflow_commands:workflow_get",
    ("workflow", "templates"): "whoosh_cli.workflow_commands:workflow_templates",
    ("workflow", "run"): "whoosh_cli.workflow_commands:workflow_run",
    ("execution", "list"): "whoosh_cli.workflow_commands:execution_list",
    ("execution", "get"): "whoosh_cli.workflow_commands:execution_get",
    ("execution", "watch"): "whoosh_cli.workflow_commands:execution_watch",
    ("execution", "cancel"): "whoosh_cli.workflow_commands:execution_cancel",
    ("execution", "retry"): "whoosh_cli.workflow_commands:execution_retry",
    ("execution", "approve"): "whoosh_cli.workflow_commands:execution_approve",
    ("execution", "reject"): "whoosh_cli.workflow_commands:execution_reject",
    ("thread", "start"): "whoosh_cli.collab_commands:thread_start",
    ("thread", "list"): "whoosh_cli.collab_commands:thread_list",
    ("thread", "get"): "whoosh_cli.collab_commands:thread_get",
    ("thread", "post"): "whoosh_cli.collab_commands:thread_post",
    ("thread", "decide"): "whoosh_cli.collab_commands:thread_decide",
    ("thread", "close"): "whoosh_cli.collab_commands:thread_close",
    ("thread", "events"): "whoosh_cli.collab_commands:thread_events",
    ("budget", "set"): "whoosh_cli.collab_commands:budget_set",
    ("budget", "list"): "whoosh_cli.collab_commands:budget_list",
    ("budget", "usage"): "whoosh_cli.usage_command:budget_usage",
    ("resolve",): "whoosh_cli.collab_commands:resolve",
}


def command_key(args: argparse.Namespace) -> tuple[str, ...]:
    action = getattr(args, f"{args.group}_action", None)
    return (args.group, action) if action else (args.group,)


def load_command(key: tuple[str, ...]) -> AsyncCommand:
    """The coroutine function behind a command, importing its module now."""
    module_name, _, attribute = COMMANDS[key].partition(":")
    command: AsyncCommand = getattr(importlib.import_module(module_name), attribute)
    return command


def dispatch(args: argparse.Namespace) -> int:
    from whoosh_cli.context import load_context

    ctx = load_context(args)
    key = command_key(args)
    if key == ("up",):
        from whoosh_cli.up_command import run_up

        return run_up(ctx)
    if key == ("replay",):
        from whoosh_cli.replay_command import replay

        return replay(ctx, args)
    if key in (("backup",), ("restore",)):
        from whoosh_cli import backup_command

        return (backup_command.backup if key == ("backup",) else backup_command.restore)(ctx, args)
    return asyncio.run(load_command(key)(ctx, args))


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
