"""`whoosh thread ...`, `whoosh budget ...` and `whoosh resolve ADDRESS`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from uuid import UUID

import yaml
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.addresses import AddressError, parse_address
from whoosh_shared.contract.budgets import BudgetView, SetBudget

from whoosh_cli.collab_client import open_collab
from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, UsageError
from whoosh_cli.output import print_json, print_line, print_table, truncate
from whoosh_cli.validation import build

POLL_S = 0.5


def parse_thread_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a thread id") from None


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def start_command(args: argparse.Namespace) -> t.StartThread:
    if bool(args.participants) == bool(args.address):
        raise UsageError("give --participants a,b,c or --address ADDR (one of them)")
    if args.address:
        check_address(args.address)
    vetoes = set(_names(args.veto))
    participants = [
        {"agent": name, "role": args.role, "veto": name in vetoes}
        for name in _names(args.participants)
    ]
    protocol = {"rule": args.rule, "max_rounds": args.rounds, "quorum": args.quorum}
    return build(
        t.StartThread,
        "thread",
        topic=args.topic,
        kind=args.kind,
        participants=participants,
        address=args.address,
        role=args.role,
        answer_type=args.answer_type,
        choices=_names(args.choices),
        protocol=protocol,
        subject=args.subject,
        subject_task=args.subject_task,
        project=args.project,
        escalation=_escalation(args.escalation),
        budget_tokens=args.budget_tokens,
        budget_usd=args.budget_usd,
        budget_on_exhausted="stop" if args.budget_stop else "refuse",
    )


def _escalation(text: str | None) -> list[object]:
    """Rules as YAML or JSON text, or @FILE: a list of {name, when, do}."""
    if not text:
        return []
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        rules = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"--escalation is not YAML or JSON: {exc}") from None
    if not isinstance(rules, list):
        raise UsageError("--escalation: expected a list of rules ({name, when, do})")
    return rules


async def thread_start(ctx: CliContext, args: argparse.Namespace) -> int:
    command = start_command(args)
    async with open_collab(ctx) as collab:
        thread_id = await collab.start(command)
        if not args.wait:
            if ctx.json:
                print_json({"status": "accepted", "ids": {"thread_id": str(thread_id)}})
            else:
                print_line(f"thread {thread_id} started")
            return EXIT_OK
        view = await _follow(collab, thread_id, quiet=ctx.json)
    if ctx.json:
        print_json(view)
    else:
        print_line(
            f"{view.outcome}: {view.decision if view.decision is not None else 'no decision'}"
        )
    return EXIT_OK if view.decision is not None else EXIT_FAILURE


async def _follow(collab, thread_id: UUID, quiet: bool) -> t.ThreadView:
    """Print messages as they are recorded until the thread closes or waits for a human."""
    shown = 0
    while True:
        view = await collab.thread(thread_id)
        for message in view.messages[shown:]:
            if not quiet:
                print_line(f"[{message.author}] {truncate(message.body.strip(), 200)}")
        shown = len(view.messages)
        if view.state is t.ThreadState.CLOSED:
            return view
        if view.state is t.ThreadState.AWAITING_HUMAN:
            if not quiet:
                print_line(f"waiting for a human: whoosh thread decide {thread_id} DECISION")
            return view
        await asyncio.sleep(POLL_S)


async def thread_list(ctx: CliContext, args: argparse.Namespace) -> int:
    query = build(t.ListThreads, "thread list", state=args.state, limit=args.limit)
    async with open_collab(ctx) as collab:
        found = await collab.threads(query)
    if ctx.json:
        print_json(found)
        return EXIT_OK
    rows = [
        (str(v.id), v.kind.value, v.state.value, len(v.rounds), v.decision or "-",
         truncate(v.topic, 50))
        for v in found.threads
    ]  # fmt: skip
    print_table(("ID", "KIND", "STATE", "ROUNDS", "DECISION", "TOPIC"), rows)
    return EXIT_OK


async def thread_get(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        view = await collab.thread(parse_thread_id(args.thread_id))
    if ctx.json:
        print_json(view)
        return EXIT_OK
    print_line(f"{view.topic}  ({view.kind.value}, {view.state.value})")
    print_line(f"decision: {view.decision if view.decision is not None else '-'}"
               f"  outcome: {view.outcome or '-'}")  # fmt: skip
    rows = [(v.round, v.voter, v.value if v.value is not None else "abstain", f"{v.weight:g}",
             truncate(v.reason, 50)) for v in view.votes]  # fmt: skip
    print_table(("ROUND", "VOTER", "VOTE", "WEIGHT", "REASON"), rows)
    return EXIT_OK


async def thread_post(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        await collab.post(parse_thread_id(args.thread_id), args.text)
    print_line("posted")
    return EXIT_OK


async def thread_decide(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        await collab.decide(parse_thread_id(args.thread_id), args.decision, args.reason)
    print_line(f"decided: {args.decision}")
    return EXIT_OK


async def thread_close(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        await collab.close(parse_thread_id(args.thread_id), args.reason)
    print_line("closed")
    return EXIT_OK


async def thread_events(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        events = await collab.events(parse_thread_id(args.thread_id))
    if ctx.json:
        print_json([e.model_dump(mode="json") for e in events])
        return EXIT_OK
    rows = [(e.notification_id, e.timestamp.isoformat(timespec="milliseconds"), e.type,
             truncate(str({k: v for k, v in e.data.items() if k != "body"}), 60))
            for e in events]  # fmt: skip
    print_table(("ID", "TIME", "EVENT", "DETAIL"), rows)
    return EXIT_OK


async def budget_set(ctx: CliContext, args: argparse.Namespace) -> int:
    command = build(
        SetBudget, "budget", scope=args.scope, tokens=args.tokens, usd=args.usd,
        period=args.period, warn_at=args.warn_at, on_exhausted=args.on_exhausted,
    )  # fmt: skip
    async with open_collab(ctx) as collab:
        await collab.set_budget(command)
    print_line(f"budget {args.scope} set")
    return EXIT_OK


async def budget_list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        found = await collab.budgets()
    if ctx.json:
        print_json(found)
        return EXIT_OK
    rows = [
        (b.scope, b.period.value, _limit(b.tokens, b.used_tokens, b.reserved_tokens),
         _usd(b.usd, b.used_usd), f"{b.share_used:.0%}", _state(b), b.on_exhausted)
        for b in found.budgets
    ]  # fmt: skip
    header = ("SCOPE", "PERIOD", "TOKENS used+reserved/limit", "USD", "USED", "STATE", "AT 100%")
    print_table(header, rows)
    return EXIT_OK


def _state(budget: BudgetView) -> str:
    return "exhausted" if budget.exhausted else "warned" if budget.warned else "ok"


def _limit(limit: int | None, used: int, reserved: int) -> str:
    return "-" if limit is None else f"{used}+{reserved}/{limit}"


def _usd(limit: float | None, used: float) -> str:
    return "-" if limit is None else f"{used:.4f}/{limit:.4f}"


def check_address(text: str) -> None:
    """A malformed address is the user's to fix (exit 2), before anything is asked."""
    try:
        parse_address(text)
    except AddressError as exc:
        raise UsageError(str(exc)) from None


async def resolve(ctx: CliContext, args: argparse.Namespace) -> int:
    check_address(args.address)
    async with open_collab(ctx) as collab:
        found = await collab.resolve(args.address)
    if ctx.json:
        print_json(found)
        return EXIT_OK
    if not found.agents:
        print_line(f"no agent matches {found.address}")
        return EXIT_FAILURE
    for name in found.agents:
        print_line(name)
    return EXIT_OK
