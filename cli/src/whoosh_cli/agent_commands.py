"""`whoosh agent list|add|enable|disable`: the fleet, spoken directly to the coordinator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from whoosh_shared.agents import AgentSpec
from whoosh_shared.commands import CommandReply, DisableAgent, EnableAgent, RegisterAgent
from whoosh_shared.config import ConfigError, parse_config_text
from whoosh_shared.queries import AgentList, AgentView, ListAgents

from whoosh_cli.bus_session import ask, bus_session, require_accepted, send
from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, UsageError
from whoosh_cli.output import error, print_json, print_line, print_table
from whoosh_cli.validation import build


async def agent_list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with bus_session(ctx.nats_url()) as bus:
        agents = await ask(bus, ListAgents(), AgentList)
    if ctx.json:
        print_json(agents)
        return EXIT_OK
    rows = [_agent_row(a) for a in sorted(agents.agents, key=lambda a: a.spec.name)]
    print_table(("NAME", "TYPE", "MODEL", "CAPABILITIES", "ENABLED", "LOAD"), rows)
    return EXIT_OK


def _agent_row(agent: AgentView) -> tuple[Any, ...]:
    spec = agent.spec
    caps = ",".join(
        name if level >= 1.0 else f"{name}={level:g}" for name, level in spec.capabilities.items()
    )
    return (
        spec.name,
        spec.type.value,
        spec.model,
        caps or "-",
        agent.enabled,
        f"{agent.load}/{spec.max_concurrent}",
    )


def parse_capabilities(values: list[str] | None) -> dict[str, float]:
    """`--capability python` (full proficiency) or `--capability python=0.8`."""
    found: dict[str, float] = {}
    for value in values or []:
        name, _, level = value.partition("=")
        try:
            found[name.strip()] = float(level) if level else 1.0
        except ValueError:
            raise UsageError(f"--capability {value!r}: proficiency must be a number 0..1") from None
    return found


def specs_from_args(args: argparse.Namespace) -> list[AgentSpec]:
    """The agents `agent add` should register: from --file, or from NAME and flags."""
    if args.file:
        return specs_from_file(Path(args.file), args.name)
    if not args.name:
        raise UsageError("agent add needs a NAME (or --file spec.yaml)")
    fields: dict[str, Any] = {"name": args.name, "type": args.type}
    optional = {
        "command": args.command,
        "endpoint": args.endpoint,
        "host": args.host,
        "model": args.model,
        "specialization": args.specialization,
        "cli": args.cli,
        "max_concurrent": args.max_concurrent,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if args.capability:
        fields["capabilities"] = parse_capabilities(args.capability)
    if args.disabled:
        fields["enabled"] = False
    return [build(AgentSpec, f"agent {args.name!r}", **fields)]


def specs_from_file(path: Path, name: str | None) -> list[AgentSpec]:
    """A file with one agent spec, or a whoosh.yaml-style file with an `agents:` section."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}:{where}: malformed YAML") from None
    if isinstance(data, dict) and ("agents" in data or "whoosh" in data):
        try:
            agents = list(parse_config_text(text, str(path)).agents.values())
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        return [a for a in agents if name is None or a.name == name]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an agent spec (a mapping)")
    fields = {**data, **({"name": name} if name else {})}
    return [build(AgentSpec, f"agent spec in {path}", **fields)]


async def agent_add(ctx: CliContext, args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if not specs:
        raise UsageError(f"no agent named {args.name!r} in {args.file}")
    replies: list[tuple[AgentSpec, CommandReply]] = []
    async with bus_session(ctx.nats_url()) as bus:
        for spec in specs:
            replies.append((spec, await send(bus, RegisterAgent(spec=spec, actor="cli"))))
    if ctx.json:
        print_json([{"agent": s.name, **r.model_dump(mode="json")} for s, r in replies])
    failed = 0
    for spec, reply in replies:
        if reply.accepted:
            if not ctx.json:
                print_line(f"registered agent {spec.name}")
        else:
            failed += 1
            error(f"agent {spec.name} rejected ({reply.code}): {reply.reason}")
    return EXIT_FAILURE if failed else EXIT_OK


async def agent_enable(ctx: CliContext, args: argparse.Namespace) -> int:
    command = build(EnableAgent, "agent name", name=args.name, actor="cli")
    return await _toggle(ctx, command, "enabled")


async def agent_disable(ctx: CliContext, args: argparse.Namespace) -> int:
    command = build(DisableAgent, "agent name", name=args.name, actor="cli")
    return await _toggle(ctx, command, "disabled")


async def _toggle(ctx: CliContext, command: EnableAgent | DisableAgent, done: str) -> int:
    async with bus_session(ctx.nats_url()) as bus:
        reply = await send(bus, command)
    if ctx.json:
        print_json(reply)
    require_accepted(reply, f"{type(command).__name__} {command.name}")
    if not ctx.json:
        print_line(f"{done} agent {command.name}")
    return EXIT_OK
