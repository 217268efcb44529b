"""The `whoosh` command line, declared in one place.

The shared options (--config, --nats, --json) are accepted both before and
after the subcommand (`whoosh --json agent list` and `whoosh agent list --json`),
because people type them in either place.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.enums import AgentType, CliKind, TaskStatus

from whoosh_cli import collab_arguments

# The contract's priority range (whoosh_shared.contract.commands), repeated so that `whoosh --help`
# need not import the pydantic contract; tests/cli/test_startup_imports.py keeps them equal.
MIN_PRIORITY, MAX_PRIORITY = 1, 10


def _shared_options(with_json: bool) -> argparse.ArgumentParser:
    """Options every command takes; SUPPRESS keeps a later position from erasing an earlier."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="whoosh.yaml to use (default: $WHOOSH_CONFIG, then ./whoosh.yaml)",
    )
    parent.add_argument(
        "--nats",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="talk to NATS directly instead of the gateway (operators on the cluster network)",
    )
    parent.add_argument(
        "--gateway",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="gateway URL (default: $WHOOSH_GATEWAY_URL, ~/.config/whoosh/cli.yaml, the "
        "running `whoosh up`, then the config)",
    )
    parent.add_argument(
        "--api-key",
        metavar="KEY",
        default=argparse.SUPPRESS,
        help="API key (default: $WHOOSH_API_KEY, ~/.config/whoosh/cli.yaml, the key a local "
        "`whoosh up` saved)",
    )
    if with_json:
        parent.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
        )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whoosh",
        description="Run a fleet of AI agents: start WHOOSH, manage agents, submit tasks.",
        parents=[_shared_options(with_json=True)],
    )
    commands = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    common = _shared_options(with_json=True)
    _add_up(commands)
    _add_status(commands, common)
    _add_top(commands, common)
    _add_replay(commands, common)
    _add_backup(commands, common)
    _add_agent(commands, common)
    _add_task(commands, common)
    _add_key(commands, common)
    _add_alerts(commands, common)
    _add_workflow(commands, common)
    _add_execution(commands, common)
    collab_arguments.add_arguments(commands, common)
    return parser


def _add_workflow(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    workflow = commands.add_parser("workflow", help="store, list, show and run workflows")
    sub = workflow.add_subparsers(dest="workflow_action", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import", parents=[common], help="store a workflow file: native YAML or an n8n export"
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--name", metavar="NAME", help="store it under this name")
    imp.add_argument("--format", choices=["auto", "yaml", "n8n"], default="auto")
    create = sub.add_parser("create", parents=[common], help="a workflow from a template")
    create.add_argument("new_name", metavar="NAME")
    create.add_argument("--from", dest="template", metavar="TEMPLATE", help="a shipped template")
    create.add_argument("--file", metavar="FILE", help="or a workflow file")
    create.add_argument("--format", choices=["auto", "yaml", "n8n"], default="auto")
    create.set_defaults(name=None)
    sub.add_parser("list", parents=[common], help="stored workflows")
    get = sub.add_parser("get", parents=[common], help="one workflow (its normalized YAML)")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--version", type=int, metavar="N", help="default: the latest")
    get.add_argument("--format", choices=["yaml", "json", "source"], default="yaml")
    sub.add_parser("templates", parents=[common], help="the templates shipped with WHOOSH")
    run = sub.add_parser("run", parents=[common], help="start an execution")
    run.add_argument("name", metavar="NAME")
    run.add_argument("--input", action="append", metavar="KEY=VALUE", help="(repeatable)")
    run.add_argument("--version", type=int, metavar="N", help="default: the latest")
    run.add_argument("--wait", action="store_true", help="follow it; exit 0 only if it succeeds")


def _add_execution(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    execution = commands.add_parser("execution", help="follow, cancel, retry, approve runs")
    sub = execution.add_subparsers(dest="execution_action", metavar="ACTION", required=True)
    listed = sub.add_parser("list", parents=[common], help="executions, newest first")
    listed.add_argument("--workflow", metavar="NAME")
    listed.add_argument(
        "--status", choices=["running", "succeeded", "failed", "cancelled", "timed_out"]
    )
    listed.add_argument("--limit", type=int, default=50, metavar="N")
    for action, text in (
        ("get", "one execution, step by step"),
        ("watch", "follow until it ends; exit 0 only if it succeeded"),
    ):
        p = sub.add_parser(action, parents=[common], help=text)
        p.add_argument("execution_id", metavar="ID")
    cancel = sub.add_parser("cancel", parents=[common], help="stop every running step")
    cancel.add_argument("execution_id", metavar="ID")
    cancel.add_argument("--reason", default="cancelled by user")
    retry = sub.add_parser(
        "retry", parents=[common], help="run the failed steps again (keeps the others' outputs)"
    )
    retry.add_argument("execution_id", metavar="ID")
    retry.add_argument("--from", dest="from_step", metavar="STEP", help="and everything after")
    retry.add_argument("--wait", action="store_true", help="follow it until it ends")
    for action in ("approve", "reject"):
        p = sub.add_parser(action, parents=[common], help=f"{action} a waiting approval step")
        p.add_argument("execution_id", metavar="ID")
        p.add_argument("step", metavar="STEP")
        p.add_argument("--comment", metavar="TEXT")


def _add_alerts(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("alerts", parents=[common], help="alerts firing now and recent ones")
    p.add_argument("--firing", action="store_true", help="only the alerts firing now")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")


def _add_up(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "up",
        parents=[_shared_options(with_json=False)],
        help="start NATS, the coordinator and the executor here; Ctrl-C stops them",
    )


def _add_status(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    commands.add_parser("status", parents=[common], help="fleet and task counts")


def _add_top(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "top", parents=[common], help="live view of agents and running tasks (q to quit)"
    )
    p.add_argument("--interval", type=float, default=2.0, metavar="S", help="refresh every S s")
    p.add_argument("--once", action="store_true", help="print one frame and exit")


def _add_replay(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "replay",
        parents=[common],
        help="rebuild the projections from the event store; print counts",
    )
    p.add_argument("--store", metavar="URL", help="store URL (default: from the config)")


def _add_backup(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    for name, text in (
        ("backup", "a consistent copy of the event store in FILE, verified by replaying it"),
        ("restore", "fill an empty data dir (or PostgreSQL schema) from a backup FILE"),
    ):
        p = commands.add_parser(name, parents=[common], help=text)
        p.add_argument("file", metavar="FILE")
        p.add_argument("--store", metavar="URL", help="store URL (default: from the config)")


def _add_agent(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    agent = commands.add_parser("agent", help="list, add, enable and disable agents")
    sub = agent.add_subparsers(dest="agent_action", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="agents with their load")
    add = sub.add_parser("add", parents=[common], help="register an agent")
    add.add_argument("name", nargs="?", metavar="NAME")
    add.add_argument("--file", metavar="SPEC.yaml", help="agent spec file (or a whoosh.yaml)")
    add.add_argument("--type", default=AgentType.CLI.value, choices=[t.value for t in AgentType])
    add.add_argument("--command", metavar="CMD", help="command line; the prompt goes on stdin")
    add.add_argument(
        "--capability",
        action="append",
        metavar="X[=LEVEL]",
        help="a capability, optionally with proficiency 0..1 (repeatable)",
    )
    add.add_argument("--model", metavar="M")
    add.add_argument("--max-concurrent", type=int, metavar="N")
    add.add_argument("--endpoint", metavar="URL", help="HTTP base URL (ollama / openai)")
    add.add_argument("--host", metavar="HOST", help="SSH host for a remote CLI agent")
    add.add_argument("--specialization", metavar="TEXT")
    add.add_argument("--cli", choices=[k.value for k in CliKind], help="which CLI (parsing)")
    add.add_argument("--disabled", action="store_true", help="register it disabled")
    for action in ("enable", "disable"):
        toggle = sub.add_parser(action, parents=[common], help=f"{action} an agent at once")
        toggle.add_argument("name", metavar="NAME")
    remove = sub.add_parser(
        "remove", parents=[common], help="remove an agent (refused while it holds work)"
    )
    remove.add_argument("name", metavar="NAME")
    weight = sub.add_parser(
        "weight", parents=[common], help="set an agent's traffic weight (0..100; 0 drains it)"
    )
    weight.add_argument("name", metavar="NAME")
    weight.add_argument("weight", type=int, metavar="N", help="0..100 (default of an agent: 100)")


def _add_task(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    task = commands.add_parser("task", help="submit, inspect, list and cancel tasks")
    sub = task.add_subparsers(dest="task_action", metavar="ACTION", required=True)
    submit = sub.add_parser("submit", parents=[common], help="submit a task")
    submit.add_argument("prompt", metavar="PROMPT", help="the prompt, or - to read stdin")
    submit.add_argument("--capability", action="append", metavar="X", help="required (repeatable)")
    submit.add_argument(
        "--priority", type=int, metavar="N", help=f"{MIN_PRIORITY} (low) .. {MAX_PRIORITY} (high)"
    )
    submit.add_argument("--agent", metavar="NAME", help="run on this agent only")
    submit.add_argument("--type", choices=[t.value for t in AgentType], help="agent type")
    submit.add_argument("--model", metavar="M")
    submit.add_argument("--timeout", type=float, metavar="S", help="seconds per attempt")
    submit.add_argument("--retries", type=int, metavar="N", help="retries after a failure")
    submit.add_argument("--system", metavar="TEXT", help="LLM agents: system prompt")
    submit.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="LLM agents: a model option, e.g. temperature=0.2 (repeatable; value read as YAML)",
    )
    submit.add_argument("--format", metavar="json", help="LLM agents: answer format (json)")
    submit.add_argument("--raw", action="store_true", help="LLM agents: plain completion")
    submit.add_argument(
        "--after",
        action="append",
        metavar="ID",
        help="wait until this task ends; skipped if it does not complete (repeatable)",
    )
    submit.add_argument(
        "--wait", action="store_true", help="follow the task live; exit 0 only if it completes"
    )
    submit.add_argument(
        "--verbose", action="store_true", help="with --wait: a summary of tokens and tokens/s"
    )
    watch = sub.add_parser(
        "watch", parents=[common], help="follow any task live; exit 0 only if it completes"
    )
    watch.add_argument("task_id", metavar="ID")
    watch.add_argument("--verbose", action="store_true", help="a summary of tokens and tokens/s")
    get = sub.add_parser("get", parents=[common], help="one task in detail")
    get.add_argument("task_id", metavar="ID")
    get.add_argument(
        "--explain",
        action="store_true",
        help="also show which agents could run it, why others could not, and what decided",
    )
    lst = sub.add_parser("list", parents=[common], help="recent tasks")
    lst.add_argument("--status", choices=[s.value for s in TaskStatus])
    lst.add_argument("--agent", metavar="NAME")
    lst.add_argument("--capability", metavar="X", help="tasks that required it")
    lst.add_argument(
        "--since", type=when, metavar="WHEN", help="submitted since: ISO time, or 30m / 2h / 1d ago"
    )
    lst.add_argument("--until", type=when, metavar="WHEN", help="submitted before (same forms)")
    lst.add_argument("--limit", type=int, default=50, metavar="N")
    lst.add_argument("--after", metavar="CURSOR", help=argparse.SUPPRESS)
    cancel = sub.add_parser("cancel", parents=[common], help="cancel a task")
    cancel.add_argument("task_id", metavar="ID")
    cancel.add_argument("--reason", default="cancelled by user")
    events = sub.add_parser("events", parents=[common], help="a task's stored history")
    events.add_argument("task_id", metavar="ID")


def _add_key(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    key = commands.add_parser("key", help="API keys of the gateway (admin)")
    sub = key.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    create = sub.add_parser("create", parents=[common], help="create a key; shown once")
    create.add_argument("name", metavar="NAME", help="what or who the key is for")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    create.add_argument("--expires", type=when_ahead, metavar="WHEN", help="ISO time or 30d")
    sub.add_parser("list", parents=[common], help="keys, never their secrets")
    revoke = sub.add_parser("revoke", parents=[common], help="revoke a key at once")
    revoke.add_argument("prefix", metavar="PREFIX", help="the key's prefix (see key list)")


def when(text: str) -> datetime:
    """An ISO time (UTC if no zone is given), or a duration ago: 45s, 30m, 2h, 7d."""
    return _parse_when(text, ago=True)


def when_ahead(text: str) -> datetime:
    """An ISO time, or a duration from now: 30m, 12h, 90d."""
    return _parse_when(text, ago=False)


def _parse_when(text: str, ago: bool) -> datetime:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        amount = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        delta = timedelta(seconds=amount)
        return datetime.now(UTC) - delta if ago else datetime.now(UTC) + delta
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO time (2026-01-31T12:00Z) or a duration (30m, 2h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
