"""`whoosh task submit|get|list|cancel|events`: tasks, through the gateway (or NATS)."""

from __future__ import annotations

import argparse
import sys
from uuid import UUID

import yaml
from whoosh_shared.contract.commands import (
    CancelTask,
    CommandReply,
    LlmOptions,
    RetryPolicy,
    SubmitTask,
)
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.limits import too_large, utf8_size
from whoosh_shared.contract.queries import ListTasks, TaskView

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, CliError, UsageError
from whoosh_cli.explain_output import print_explanation
from whoosh_cli.fleet import WriteResult, open_fleet
from whoosh_cli.output import notice, print_json, print_line, print_table, truncate
from whoosh_cli.submit_retry import new_key
from whoosh_cli.task_outcome import Outcome
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
        "idempotency_key": new_key(),  # one per invocation: its retries give one task
    }
    if getattr(args, "after", None):
        fields["depends_on"] = [parse_task_id(task_id) for task_id in args.after]
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
    limits = ctx.config.limits
    size = utf8_size(command.prompt)
    if size > limits.max_prompt_bytes:  # before connecting: nothing is sent
        raise CliError(too_large("the prompt", size, limits.max_prompt_bytes, "max_prompt_bytes"))
    async with open_fleet(ctx) as fleet:
        if not args.wait:
            return _report_submit(ctx, await fleet.submit(command))
        outcome = await fleet.submit_and_follow(
            command, live_output=not ctx.json, verbose=args.verbose
        )
        if ctx.json:
            print_json(await fleet.task(_followed_id(outcome)))
    return EXIT_OK if outcome.status is TaskStatus.COMPLETED else EXIT_FAILURE


async def task_watch(ctx: CliContext, args: argparse.Namespace) -> int:
    """Follow any task (one submitted elsewhere, or earlier) to its end, like --wait."""
    task_id = parse_task_id(args.task_id)
    async with open_fleet(ctx) as fleet:
        outcome = await fleet.follow(task_id, live_output=not ctx.json, verbose=args.verbose)
        if ctx.json:
            print_json(await fleet.task(task_id))
    return EXIT_OK if outcome.status is TaskStatus.COMPLETED else EXIT_FAILURE


def _followed_id(outcome: Outcome) -> UUID:
    if outcome.task_id is None:
        raise CliError("the followed task's id is unknown")
    return outcome.task_id


def _report_submit(ctx: CliContext, result: WriteResult) -> int:
    if ctx.json:
        print_json(result.as_json())
    if not result.ok:
        raise CliError(f"task rejected ({result.code}): {result.reason}")
    if not ctx.json:
        print_line(result.ids["task_id"])
    return EXIT_OK


async def task_get(ctx: CliContext, args: argparse.Namespace) -> int:
    task_id = parse_task_id(args.task_id)
    async with open_fleet(ctx) as fleet:
        view = await fleet.task(task_id)
        explained = await fleet.explain(task_id) if args.explain else None
    if ctx.json:
        print_json(explained or view)  # --explain --json: the explanation (it names the task)
    else:
        print_task(view)
        if explained is not None:
            print_explanation(explained)
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
    if view.stderr:
        print_line("stderr (its end):")
        print_line(view.stderr.rstrip("\n"))


async def task_list(ctx: CliContext, args: argparse.Namespace) -> int:
    query = build(
        ListTasks,
        "task list",
        status=args.status,
        agent=args.agent,
        capability=args.capability,
        submitted_after=args.since,
        submitted_before=args.until,
        limit=args.limit,
        after=args.after,
    )
    async with open_fleet(ctx) as fleet:
        page = await fleet.tasks(query)
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
    task_id = parse_task_id(args.task_id)
    build(CancelTask, "cancel", task_id=task_id, reason=args.reason)
    async with open_fleet(ctx) as fleet:
        result = await fleet.cancel(task_id, args.reason)
    if ctx.json:
        print_json(result.as_json())
    if not result.ok:
        raise CliError(f"cancel rejected ({result.code}): {result.reason}")
    if not ctx.json:
        print_line(f"cancelled {task_id}")
    return EXIT_OK


async def task_events(ctx: CliContext, args: argparse.Namespace) -> int:
    """The task's whole stored history: who did what, when (the audit trail of one task)."""
    task_id = parse_task_id(args.task_id)
    async with open_fleet(ctx) as fleet:
        events = await fleet.events(task_id)
    if ctx.json:
        print_json([e.model_dump(mode="json") for e in events])
        return EXIT_OK
    rows = [
        (e.notification_id, e.timestamp.isoformat(timespec="milliseconds"), e.type,
         truncate(_event_detail(e.data), 60))
        for e in events
    ]  # fmt: skip
    print_table(("ID", "TIME", "EVENT", "DETAIL"), rows)
    return EXIT_OK


def _event_detail(data: dict[str, object]) -> str:
    shown = ("actor", "agent_name", "attempt", "executor_id", "reason", "message", "exit_code")
    return ", ".join(f"{k}={data[k]}" for k in shown if data.get(k) not in (None, "", []))


def parse_task_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        hint = "a UUID, as printed by `whoosh task submit`"
        raise UsageError(f"{text!r} is not a task id ({hint})") from None
