"""`whoosh task submit|get|list|cancel`: tasks, spoken directly to the coordinator."""

from __future__ import annotations

import argparse
import sys
from uuid import UUID

import yaml
from whoosh_shared.commands import (
    CancelTask,
    CommandReply,
    LlmOptions,
    RetryPolicy,
    SubmitTask,
)
from whoosh_shared.enums import TaskStatus
from whoosh_shared.queries import GetTask, ListTasks, TaskPage, TaskView

from whoosh_cli.bus_session import ask, bus_session, require_accepted, send
from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, CliError, UsageError
from whoosh_cli.output import notice, print_json, print_line, print_table, truncate
from whoosh_cli.task_watch import TaskWatch
from whoosh_cli.validation import build


def read_prompt(prompt: str) -> str:
    """The prompt argument, or all of stdin for `-`."""
    if prompt != "-":
        return prompt
    text = sys.stdin.read()
    if not text.strip():
        raise UsageError("the prompt read from stdin is empty")
    return text


def submit_command(args: argparse.Namespace) -> SubmitTask:
    """SubmitTask from the flags; --retries N means N retries after the first attempt."""
    fields: dict[str, object] = {
        "prompt": read_prompt(args.prompt),
        "capabilities": args.capability or [],
        "agent": args.agent,
        "agent_type": args.type,
        "model": args.model,
        "actor": "cli",
    }
    if args.priority is not None:
        fields["priority"] = args.priority
    if args.timeout is not None:
        fields["timeout_s"] = args.timeout
    if args.retries is not None:
        if args.retries < 0:
            raise UsageError("--retries must be 0 or more")
        fields["retry"] = build(RetryPolicy, "--retries", max_attempts=args.retries + 1)
    if args.system or args.option or args.format or args.raw:
        fields["llm"] = build(
            LlmOptions,
            "LLM options",
            system=args.system,
            options=parse_options(args.option or []),
            format=args.format,
            raw=args.raw,
        )
    return build(SubmitTask, "task", **fields)


def parse_options(pairs: list[str]) -> dict[str, object]:
    """`--option temperature=0.2 --option stop=[x]`: values as YAML scalars or lists."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--option {pair!r}: cannot read the value") from None
    return options


def task_id_of(reply: CommandReply) -> UUID:
    """The new task's id from an accepted SubmitTask reply."""
    for key in ("task_id", "task", "id"):
        if key in reply.ids:
            return UUID(reply.ids[key])
    if len(reply.ids) == 1:
        return UUID(next(iter(reply.ids.values())))
    raise CliError(f"the coordinator accepted the task but returned no task id ({reply.ids})")


async def task_submit(ctx: CliContext, args: argparse.Namespace) -> int:
    command = submit_command(args)
    async with bus_session(ctx.nats_url()) as bus:
        if not args.wait:
            reply = await send(bus, command)
            return _report_submit(ctx, reply)
        watch = TaskWatch(bus, live_output=not ctx.json)
        await watch.subscribe_all()
        try:
            reply = await send(bus, command)
            if not reply.accepted:
                return _report_submit(ctx, reply)
            task_id = task_id_of(reply)
            await watch.focus(task_id)
            outcome = await watch.follow()
            if ctx.json:
                print_json(await ask(bus, GetTask(task_id=task_id), TaskView))
        finally:
            await watch.close()
    return EXIT_OK if outcome.status is TaskStatus.COMPLETED else EXIT_FAILURE


def _report_submit(ctx: CliContext, reply: CommandReply) -> int:
    if ctx.json:
        print_json(reply)
    require_accepted(reply, "task")
    if not ctx.json:
        print_line(str(task_id_of(reply)))
    return EXIT_OK


async def task_get(ctx: CliContext, args: argparse.Namespace) -> int:
    task_id = parse_task_id(args.task_id)
    async with bus_session(ctx.nats_url()) as bus:
        view = await ask(bus, GetTask(task_id=task_id), TaskView)
    if ctx.json:
        print_json(view)
    else:
        print_task(view)
    return EXIT_OK


def print_task(view: TaskView) -> None:
    """A task as labelled lines, its output last (it may be long)."""
    usage = view.usage
    rows = [
        ("task", str(view.id)),
        ("status", view.status.value),
        ("agent", view.agent or "-"),
        ("attempts", f"{view.attempt} of {view.max_attempts}"),
        ("tried", ", ".join(view.tried_agents) or "-"),
        ("priority", str(view.priority)),
        ("submitted", view.submitted_at.isoformat(timespec="seconds")),
        ("started", view.started_at.isoformat(timespec="seconds") if view.started_at else "-"),
        ("finished", view.finished_at.isoformat(timespec="seconds") if view.finished_at else "-"),
        ("reason", view.reason or "-"),
        ("exit code", "-" if view.exit_code is None else str(view.exit_code)),
        (
            "usage",
            f"{usage.duration_s:.2f}s, tokens {usage.tokens_in} in / "
            f"{usage.tokens_out} out, ${usage.cost_usd:.4f}",
        ),
        ("prompt", truncate(view.prompt, 70)),
    ]
    for label, value in rows:
        print_line(f"{label:<10} {value}")
    if view.output:
        print_line("output:")
        print_line(view.output.rstrip("\n"))


async def task_list(ctx: CliContext, args: argparse.Namespace) -> int:
    query = build(
        ListTasks,
        "task list",
        status=args.status,
        agent=args.agent,
        limit=args.limit,
        after=args.after,
    )
    async with bus_session(ctx.nats_url()) as bus:
        page = await ask(bus, query, TaskPage)
    if ctx.json:
        print_json(page)
        return EXIT_OK
    rows = [
        (
            str(t.id),
            t.status.value,
            t.agent,
            t.priority,
            t.attempt,
            t.submitted_at.isoformat(timespec="seconds"),
            truncate(t.prompt, 40),
        )
        for t in page.tasks
    ]
    print_table(("ID", "STATUS", "AGENT", "PRI", "ATTEMPT", "SUBMITTED", "PROMPT"), rows)
    if page.next_cursor:
        notice(f"whoosh: more tasks: whoosh task list --after {page.next_cursor}")
    return EXIT_OK


async def task_cancel(ctx: CliContext, args: argparse.Namespace) -> int:
    command = build(
        CancelTask, "cancel", task_id=parse_task_id(args.task_id), reason=args.reason, actor="cli"
    )
    async with bus_session(ctx.nats_url()) as bus:
        reply = await send(bus, command)
    if ctx.json:
        print_json(reply)
    require_accepted(reply, "cancel")
    if not ctx.json:
        print_line(f"cancelled {command.task_id}")
    return EXIT_OK


def parse_task_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        hint = "a UUID, as printed by `whoosh task submit`"
        raise UsageError(f"{text!r} is not a task id ({hint})") from None
