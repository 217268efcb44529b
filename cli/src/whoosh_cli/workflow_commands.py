"""`whoosh workflow import|create|list|get|templates|run` and
`whoosh execution list|get|watch|cancel|retry|approve|reject`."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from uuid import UUID

from pydantic import ValidationError
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.workflow_templates import list_templates

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, UsageError
from whoosh_cli.output import notice, print_json, print_line, print_table, truncate
from whoosh_cli.workflow_client import ACTOR, Workflows, open_workflows

WATCH_INTERVAL_S = 0.5
ENDED = ("succeeded", "failed", "skipped", "cancelled")


def _build(model: type, what: str, **fields: object) -> object:
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"{what}: {problems}") from None


# -- workflows --------------------------------------------------------------------------


async def workflow_import(ctx: CliContext, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    command = _build(
        w.CreateWorkflow, "workflow", source=text, name=args.name, format=args.format,
        filename=path.name, actor=ACTOR,
    )  # fmt: skip
    return await _store(ctx, command)


async def workflow_create(ctx: CliContext, args: argparse.Namespace) -> int:
    if bool(args.template) == bool(args.file):
        raise UsageError("give --from TEMPLATE or --file FILE")
    if args.file:
        args.name = args.name or args.new_name
        return await workflow_import(ctx, args)
    command = _build(
        w.CreateWorkflow, "workflow", template=args.template, name=args.new_name, actor=ACTOR
    )
    return await _store(ctx, command)


async def _store(ctx: CliContext, command: object) -> int:
    async with open_workflows(ctx) as flows:
        ids = await flows.send(command)  # type: ignore[arg-type]
    if ctx.json:
        print_json(ids)
    else:
        print_line(f"{ids['name']} version {ids['version']}")
    return EXIT_OK


async def workflow_list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_workflows(ctx) as flows:
        found = await flows.ask(w.ListWorkflows(), w.WorkflowList)
    if ctx.json:
        print_json(found)
        return EXIT_OK
    rows = [
        (v.name, v.version, v.steps, v.origin, v.updated_at.isoformat(timespec="seconds"),
         truncate(v.description, 50))
        for v in found.workflows
    ]  # fmt: skip
    print_table(["NAME", "VERSION", "STEPS", "FROM", "UPDATED", "DESCRIPTION"], rows)
    return EXIT_OK


async def workflow_get(ctx: CliContext, args: argparse.Namespace) -> int:
    query = _build(w.GetWorkflow, "workflow", name=args.name, version=args.version)
    async with open_workflows(ctx) as flows:
        view = await flows.ask(query, w.WorkflowView)  # type: ignore[arg-type]
    if ctx.json or args.format == "json":
        print_json(view)
    elif args.format == "source":
        print_line(view.source.rstrip("\n"))
    else:
        print_line(view.yaml.rstrip("\n"))
    return EXIT_OK


async def workflow_templates(ctx: CliContext, args: argparse.Namespace) -> int:
    templates = list_templates()
    if ctx.json:
        print_json([t.model_dump() for t in templates])
        return EXIT_OK
    rows = [(t.name, " -> ".join(t.steps), truncate(t.description, 60)) for t in templates]
    print_table(["TEMPLATE", "STEPS", "DESCRIPTION"], rows)
    return EXIT_OK


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """`--input goal=Build it`: values stay text; the coordinator reads them as the
    types the workflow declares (numbers, booleans, JSON lists and objects)."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--input {pair!r}: expected KEY=VALUE")
        inputs[key.strip()] = value
    return inputs


async def workflow_run(ctx: CliContext, args: argparse.Namespace) -> int:
    command = _build(
        w.RunWorkflow, "run", workflow=args.name, inputs=parse_inputs(args.input or []),
        version=args.version, actor=ACTOR,
    )  # fmt: skip
    async with open_workflows(ctx) as flows:
        ids = await flows.send(command)  # type: ignore[arg-type]
        execution_id = UUID(ids["execution_id"])
        if not args.wait:
            if ctx.json:
                print_json({"execution_id": str(execution_id)})
            else:
                print_line(str(execution_id))
            return EXIT_OK
        if not ctx.json:
            notice(f"execution {execution_id} started")
        view = await watch(flows, execution_id, show=not ctx.json)
    return _finish(ctx, view)


def _finish(ctx: CliContext, view: w.ExecutionView) -> int:
    if ctx.json:
        print_json(view)
    else:
        print_outputs(view)
    return EXIT_OK if view.status == "succeeded" else EXIT_FAILURE


# -- executions -------------------------------------------------------------------------


def _execution_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise UsageError(f"{text!r} is not an execution id") from None


async def execution_list(ctx: CliContext, args: argparse.Namespace) -> int:
    query = _build(
        w.ListExecutions, "query", workflow=args.workflow, status=args.status, limit=args.limit
    )
    async with open_workflows(ctx) as flows:
        found = await flows.ask(query, w.ExecutionList)  # type: ignore[arg-type]
    if ctx.json:
        print_json(found)
        return EXIT_OK
    rows = [
        (str(e.id), e.workflow, e.version, e.status, _progress(e),
         e.started_at.isoformat(timespec="seconds"))
        for e in found.executions
    ]  # fmt: skip
    print_table(["EXECUTION", "WORKFLOW", "VERSION", "STATUS", "STEPS", "STARTED"], rows)
    return EXIT_OK


def _progress(view: w.ExecutionView) -> str:
    done = sum(1 for s in view.steps if s.status in ENDED)
    return f"{done}/{len(view.steps)}"


async def execution_get(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_workflows(ctx) as flows:
        view = await flows.ask(
            w.GetExecution(execution_id=_execution_id(args.execution_id)), w.ExecutionView
        )
    if ctx.json:
        print_json(view)
    else:
        print_execution(view)
    return EXIT_OK


def print_execution(view: w.ExecutionView) -> None:
    print_line(f"execution {view.id}  {view.workflow} v{view.version}  {view.status}"
               + (f"  ({view.reason})" if view.reason else ""))  # fmt: skip
    rows = []
    for s in view.steps:
        duration = f"{s.duration_s:.1f}s" if s.duration_s is not None else "-"
        tokens = f"{s.tokens_in}/{s.tokens_out}" if s.tokens_in or s.tokens_out else "-"
        note = s.error or (s.message if s.waiting_for == "approval" else "") or ""
        rows.append((s.id, s.type, s.status, s.agent or "-", s.attempts or "-", duration, tokens,
                     f"{s.cost_usd:.4f}" if s.cost_usd else "-", truncate(note, 50)))  # fmt: skip
    print_table(
        ["STEP", "TYPE", "STATUS", "AGENT", "TRIES", "TIME", "TOKENS", "COST", "NOTE"], rows
    )


def print_outputs(view: w.ExecutionView) -> None:
    """Every step's output, in definition order, then how the run ended."""
    for step in view.steps:
        if step.status == "succeeded" and step.output.strip():
            print_line(f"--- {step.id}")
            print_line(step.output.rstrip("\n"))
    print_line(f"execution {view.id} {view.status}" + (f": {view.reason}" if view.reason else ""))


async def execution_watch(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_workflows(ctx) as flows:
        view = await watch(flows, _execution_id(args.execution_id), show=not ctx.json)
    return _finish(ctx, view)


async def watch(flows: Workflows, execution_id: UUID, show: bool) -> w.ExecutionView:
    """Follow an execution until it ends, printing each step's change of status."""
    seen: dict[str, tuple[str, int]] = {}
    while True:
        view = await flows.ask(w.GetExecution(execution_id=execution_id), w.ExecutionView)
        for step in view.steps:
            state = (step.status, step.round)
            if seen.get(step.id) != state:
                seen[step.id] = state
                if show and step.status != "pending":
                    notice(_step_line(step))
        if view.status != "running":
            return view
        await asyncio.sleep(WATCH_INTERVAL_S)


def _step_line(step: w.StepView) -> str:
    parts = [f"[{step.id}] {step.status}"]
    if step.agent:
        parts.append(f"on {step.agent}")
    if step.waiting_for == "approval":
        parts.append(f"-- approval: {step.message or ''} (whoosh execution approve ID {step.id})")
    if step.status in ("succeeded", "failed") and step.output.strip():
        parts.append("-- " + truncate(step.output.strip().splitlines()[-1], 80))
    if step.error:
        parts.append(f"-- {truncate(step.error, 120)}")
    return " ".join(parts)


async def _execution_write(ctx: CliContext, command: object) -> int:
    async with open_workflows(ctx) as flows:
        ids = await flows.send(command)  # type: ignore[arg-type]
        view = await flows.ask(
            w.GetExecution(execution_id=command.execution_id),  # type: ignore[attr-defined]
            w.ExecutionView,
        )
    if ctx.json:
        print_json({"ids": ids, "execution": json.loads(view.model_dump_json())})
    else:
        print_execution(view)
    return EXIT_OK


async def execution_cancel(ctx: CliContext, args: argparse.Namespace) -> int:
    command = w.CancelExecution(
        execution_id=_execution_id(args.execution_id), reason=args.reason, actor=ACTOR
    )
    return await _execution_write(ctx, command)


async def execution_retry(ctx: CliContext, args: argparse.Namespace) -> int:
    command = _build(
        w.RetryExecution, "retry", execution_id=_execution_id(args.execution_id),
        from_step=args.from_step, actor=ACTOR,
    )  # fmt: skip
    code = await _execution_write(ctx, command)
    if args.wait:
        async with open_workflows(ctx) as flows:
            view = await watch(flows, command.execution_id, show=not ctx.json)  # type: ignore[attr-defined]
        return _finish(ctx, view)
    return code


async def execution_decide(ctx: CliContext, args: argparse.Namespace, approve: bool) -> int:
    command = _build(
        w.DecideApproval, "decision", execution_id=_execution_id(args.execution_id),
        step=args.step, approve=approve, comment=args.comment or "", actor=ACTOR,
    )  # fmt: skip
    return await _execution_write(ctx, command)


async def execution_approve(ctx: CliContext, args: argparse.Namespace) -> int:
    return await execution_decide(ctx, args, approve=True)


async def execution_reject(ctx: CliContext, args: argparse.Namespace) -> int:
    return await execution_decide(ctx, args, approve=False)
